package pipeline_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoFunctionTakesMoreThanSixParameters keeps the stage core's rule
// (issue 12): a function that needs more than six values takes a struct
// that names them (giveUp, failure, attemptLog, …).
func TestNoFunctionTakesMoreThanSixParameters(t *testing.T) {
	const limit = 6
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			var ft *ast.FuncType
			name := "a function literal"
			switch x := n.(type) {
			case *ast.FuncDecl:
				ft, name = x.Type, x.Name.Name
			case *ast.FuncLit:
				ft = x.Type
			default:
				return true
			}
			count := 0
			for _, p := range ft.Params.List {
				count += max(1, len(p.Names))
			}
			if count > limit {
				t.Errorf("%s: %s takes %d parameters, at most %d", fset.Position(n.Pos()), name, count, limit)
			}
			return true
		})
	}
}
