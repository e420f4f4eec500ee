package blueprint

import (
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// conditionEnv is the shape conditions are type-checked against.
var conditionEnv = map[string]any{
	"initial_data":  map[string]any{},
	"state_history": map[string]any{},
	"job_id":        "",
	"client":        map[string]any{},
	"result":        map[string]any{},
}

func compileCondition(src string) (*vm.Program, error) {
	return expr.Compile(src, expr.Env(conditionEnv), expr.AsBool())
}

// evalCondition runs a compiled condition. Any run-time error (a nil
// intermediate, a type mismatch) makes the condition false.
func evalCondition(prog *vm.Program, env map[string]any) (bool, error) {
	out, err := expr.Run(prog, env)
	if err != nil {
		return false, err
	}
	ok, _ := out.(bool)
	return ok, nil
}
