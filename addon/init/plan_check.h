// Checks the whole InitPlan (types, ranges, enums, known fields, then the rules across fields)
// before stage 0 does anything, and hands it on as C++ types (plan.gen.h): nothing after this
// reads the plan's JSON.
#pragma once
#include "json.h"
#include "plan.gen.h"

// Dies with "plan: <pointer>: <problem>" at the first problem.
InitPlan check_plan(const JValue &json);
