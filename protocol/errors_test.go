package protocol

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// errorClasses is the class of every error code: transient codes are
// retried (and cost the worker the failure penalty), permanent ones follow
// the failure transition (permanent penalty), quarantine ones always
// quarantine the job (severe penalty).
var errorClasses = map[string]ErrorClass{
	ErrTransient:         ClassTransient,
	ErrTimeout:           ClassTransient,
	ErrLateResult:        ClassTransient,
	ErrResourceExhausted: ClassTransient,
	ErrLimitExceeded:     ClassTransient,
	ErrDependencyMissing: ClassTransient,
	ErrInternal:          ClassTransient,
	ErrPermanent:         ClassPermanent,
	ErrInvalidInput:      ClassPermanent,
	ErrIntegrityMismatch: ClassPermanent,
	ErrDependency:        ClassPermanent,
	ErrSecurity:          ClassQuarantine,
	ErrContractViolation: ClassQuarantine,
}

func className(c ErrorClass) string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassPermanent:
		return "permanent"
	case ClassQuarantine:
		return "quarantine"
	}
	return "class " + strconv.Itoa(int(c))
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for code, want := range errorClasses {
		if got := Classify(code); got != want {
			t.Errorf("Classify(%q) = %s, want %s", code, className(got), className(want))
		}
	}
	// Unknown and empty codes are transient, as upstream; codes are
	// matched exactly.
	for _, code := range []string{"", "SOMETHING_NEW_ERROR", "security_error", " SECURITY_ERROR", "PERMANENT"} {
		if got := Classify(code); got != ClassTransient {
			t.Errorf("Classify(%q) = %s, want transient", code, className(got))
		}
	}
}

// TestClassifyCoversEveryCode: every error code declared in errors.go has
// a class in the table above, so that a new code cannot go unclassified.
func TestClassifyCoversEveryCode(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := 0
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				code, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				declared++
				if _, ok := errorClasses[code]; !ok {
					t.Errorf("error code %s (%q) has no class in errorClasses", name.Name, code)
				}
			}
		}
	}
	if declared != len(errorClasses) {
		t.Errorf("errors.go declares %d codes, the table has %d", declared, len(errorClasses))
	}
}
