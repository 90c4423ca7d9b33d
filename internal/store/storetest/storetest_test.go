package storetest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// contractMethods is every method of store.Store and store.Tx, by name
// (Queries methods are on both), sorted.
func contractMethods() []string {
	set := map[string]bool{}
	for _, typ := range []reflect.Type{reflect.TypeFor[store.Store](), reflect.TypeFor[store.Tx]()} {
		for m := range typ.Methods() {
			set[m.Name] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// TestEveryMethodHasACase fails naming each method of store.Store and
// store.Tx that no conformance case declares it covers and that is not
// exempt with a reason. Add a case (with covers) when the contract grows.
func TestEveryMethodHasACase(t *testing.T) {
	methods := contractMethods()
	covered := map[string][]string{} // method -> cases
	for _, tc := range allCases() {
		for _, m := range tc.covers {
			covered[m] = append(covered[m], tc.name)
		}
	}
	var missing []string
	for _, m := range methods {
		if len(covered[m]) == 0 && exempt[m] == "" {
			missing = append(missing, m)
		}
	}
	require.Empty(t, missing, "store methods without a conformance case: give each a case in storetest (see testCase.covers), or an entry with the reason in exempt")

	for m, why := range exempt {
		require.Contains(t, methods, m, "exempt names %q, which is no store method", m)
		require.NotEmpty(t, strings.TrimSpace(why), "exempt %q needs a reason", m)
		require.Empty(t, covered[m], "%q is exempt but covered by %v: drop the exemption", m, covered[m])
	}
	for m, cases := range covered {
		require.Contains(t, methods, m, "cases %v cover %q, which is no store method (renamed?)", cases, m)
	}
	t.Logf("%d store methods, %d covered, %d exempt", len(methods), len(covered), len(exempt))
}

// TestCasesAreWellFormed: names are unique, every case says what it covers,
// and runs a named function (so TestCasesCallWhatTheyCover can read it).
func TestCasesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range allCases() {
		require.NotEmpty(t, tc.name)
		require.False(t, seen[tc.name], "case %q twice", tc.name)
		seen[tc.name] = true
		require.NotEmpty(t, tc.covers, "case %q covers nothing", tc.name)
		require.NotNil(t, tc.fn, "case %q", tc.name)
		fn := funcName(tc.fn)
		require.NotContains(t, fn, ".func", "case %q: use a named function, not a closure (%s)", tc.name, fn)
	}
}

// TestCasesCallWhatTheyCover reads this package's source and checks that
// each method a case claims to cover is called from its function, directly
// or through the package's helpers: a claim cannot outlive the code that
// backed it.
func TestCasesCallWhatTheyCover(t *testing.T) {
	funcs := packageFuncs(t)
	for _, tc := range allCases() {
		name := funcName(tc.fn)
		require.Contains(t, funcs, name, "case %q runs %s, not found in the package source", tc.name, name)
		calls := selectorsReached(funcs, name)
		for _, m := range tc.covers {
			require.True(t, calls[m], "case %q claims to cover %s, but %s never calls it", tc.name, m, name)
		}
	}
}

// funcName is the unqualified name of a package-level function value.
func funcName(fn any) string {
	full := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	return full[strings.LastIndex(full, "/")+1:][len("storetest."):]
}

// packageFuncs parses the package's non-test files and returns its
// top-level functions by name.
func packageFuncs(t *testing.T) map[string]*ast.FuncDecl {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	funcs := map[string]*ast.FuncDecl{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				funcs[fd.Name.Name] = fd
			}
		}
	}
	require.NotEmpty(t, funcs)
	return funcs
}

// selectorsReached returns every selector name (x.Name) in the body of
// the function root and of every package function it refers to, however
// deeply.
func selectorsReached(funcs map[string]*ast.FuncDecl, root string) map[string]bool {
	sels := map[string]bool{}
	visited := map[string]bool{}
	queue := []string{root}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if visited[name] {
			continue
		}
		visited[name] = true
		ast.Inspect(funcs[name].Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				sels[n.Sel.Name] = true
			case *ast.Ident:
				if _, ok := funcs[n.Name]; ok && !visited[n.Name] {
					queue = append(queue, n.Name)
				}
			}
			return true
		})
	}
	return sels
}
