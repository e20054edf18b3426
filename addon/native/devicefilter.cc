#include "common.h"
namespace tsrun {
void InitDeviceFilter(Napi::Env env, Napi::Object exports) {}
}
