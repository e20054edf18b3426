// writeFiles(pairs): each [path, value] written in order, on libuv's thread pool, as one piece of
// work: open(O_WRONLY|O_TRUNC) (never creates), one write(2) of the whole value (cgroupfs parses
// each write as a whole), close. What a cgroup's create and update write (src/cgroups/util.ts):
// with fs.promises each file costs three trips to the thread pool (open, write, close), and on a
// busy 2-core host a few posts in a thousand held the event loop 4-15 ms inside the call that
// queues them (measured; most likely waiting for libuv's queue lock, held by a descheduled pool
// thread); device rules are a dozen or more files.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace tsrun {

namespace {

class WriteFilesWorker : public Napi::AsyncWorker {
 public:
  WriteFilesWorker(Napi::Env env, std::vector<std::pair<std::string, std::string>> files)
      : Napi::AsyncWorker(env, "tsrun.writeFiles"), files_(std::move(files)), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  // Stops at the first failure: the files after it are not touched (the order is the caller's).
  void Execute() override {
    for (size_t i = 0; i < files_.size(); i++) {
      const auto &[path, value] = files_[i];
      int fd;
      do fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
      while (fd < 0 && errno == EINTR);
      if (fd < 0) return Fail(i, "open", errno);
      ssize_t n;
      do n = write(fd, value.data(), value.size());
      while (n < 0 && errno == EINTR);
      int err = n < 0 ? errno : 0;
      close(fd);
      if (err) return Fail(i, "write", err);
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_ < 0) return deferred_.Resolve(env.Undefined());
    try {
      ThrowErrno(env, op_ + " " + files_[failed_].first, err_);
    } catch (const Napi::Error &e) {
      // Which file: the caller words the error ("<file>: write <value>: <errno text>").
      e.Value().Set("index", Napi::Number::New(env, (double)failed_));
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  void Fail(size_t i, const char *op, int err) {
    failed_ = (long)i;
    op_ = op;
    err_ = err;
  }
  std::vector<std::pair<std::string, std::string>> files_;
  Napi::Promise::Deferred deferred_;
  long failed_ = -1;
  std::string op_;
  int err_ = 0;
};

// writeFiles([[path, value], ...]) → Promise<void>; rejects with the errno error of the first
// failure, its `index` the failed pair's.
Napi::Value WriteFiles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "files must be an array of [path, value]");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::pair<std::string, std::string>> files;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsArray()) throw Napi::TypeError::New(env, "files must be an array of [path, value]");
    Napi::Array p = v.As<Napi::Array>();
    if (p.Length() != 2 || !p.Get(0u).IsString() || !p.Get(1u).IsString()) throw Napi::TypeError::New(env, "files must be an array of [path, value]");
    files.emplace_back(p.Get(0u).As<Napi::String>().Utf8Value(), p.Get(1u).As<Napi::String>().Utf8Value());
  }
  auto *w = new WriteFilesWorker(env, std::move(files));
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

}  // namespace

void InitFiles(Napi::Env env, Napi::Object exports) { exports.Set("writeFiles", Napi::Function::New(env, WriteFiles, "writeFiles")); }

}  // namespace tsrun
