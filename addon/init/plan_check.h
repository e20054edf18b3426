// Checks the whole InitPlan (types, ranges, enums, known fields) before stage 0 does anything.
#pragma once
#include "json.h"

// Dies with "plan: <pointer>: <problem>" at the first problem.
void check_plan(const JValue &plan);
