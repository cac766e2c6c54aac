package loopauth

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// testFunc is a top-level function of a package's _test.go files.
type testFunc struct {
	param    string   // type of the first parameter: "*testing.T", "*testing.F", "*testing.B", or ""
	literals []string // every string literal in the function and in what it uses, unquoted
}

// testFuncs parses the _test.go files of the package in dir (external
// test packages included) and returns their top-level functions by name.
// A function's literals include those of the top-level functions and
// variables of the test files that it names, directly or through them: a
// table of subtests often lives in a helper.
func testFuncs(t *testing.T, dir string) map[string]testFunc {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	out := map[string]testFunc{}
	own := map[string][]string{}  // literals of each top-level declaration
	uses := map[string][]string{} // identifiers each one names
	scan := func(name string, n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING {
					own[name] = append(own[name], s)
				}
			case *ast.Ident:
				uses[name] = append(uses[name], n.Name)
			}
			return true
		})
	}
	for _, path := range paths {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			if gd, ok := decl.(*ast.GenDecl); ok && (gd.Tok == token.VAR || gd.Tok == token.CONST) {
				for _, spec := range gd.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						scan(id.Name, spec)
					}
				}
			}
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv != nil {
				continue
			}
			scan(fd.Name.Name, fd)
			tf := testFunc{}
			if ps := fd.Type.Params.List; len(ps) > 0 {
				if star, ok := ps[0].Type.(*ast.StarExpr); ok {
					if sel, ok := star.X.(*ast.SelectorExpr); ok {
						if pkg, ok := sel.X.(*ast.Ident); ok {
							tf.param = "*" + pkg.Name + "." + sel.Sel.Name
						}
					}
				}
			}
			out[fd.Name.Name] = tf
		}
	}
	for name, tf := range out {
		seen := map[string]bool{name: true}
		for queue := []string{name}; len(queue) > 0; queue = queue[1:] {
			tf.literals = append(tf.literals, own[queue[0]]...)
			for _, u := range uses[queue[0]] {
				if _, decl := uses[u]; decl && !seen[u] {
					seen[u] = true
					queue = append(queue, u)
				}
			}
		}
		out[name] = tf
	}
	return out
}

// checklistIndex is what checklist rows may name.
type checklistIndex struct {
	root, kit   map[string]testFunc // this package's test functions, loopauthtest's
	makeTargets map[string]bool
}

func makeTargets(makefile string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(makefile, "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && name != "" && !strings.ContainsAny(name, " \t$=.#") {
			out[name] = true
		}
	}
	return out
}

var (
	backticked   = regexp.MustCompile("`([^`]*)`")
	testNameRe   = regexp.MustCompile(`^(loopauthtest\.)?((Test|Fuzz|Benchmark|Example)\w*)(/(.*))?$`)
	goIdentRe    = regexp.MustCompile(`^[A-Za-z_]\w*$`)
	rowIDRe      = regexp.MustCompile(`^[A-Z]-\d\d$`)
	sectionRe    = regexp.MustCompile(`^## ([A-Z]) `)
	laterRe      = regexp.MustCompile(`\bLater\b`)
	issueRe      = regexp.MustCompile(`(?i)\bissue\b`)
	issueNamedRe = regexp.MustCompile(`(?i)\bissue \d+\b`)
)

// checkChecklist returns the problems of the checklist text: rows that
// name a test, fuzz target, benchmark, example, helper or make target that
// does not exist, rows without a test and without a reason, rows that say
// "not done", deferrals that do not name their issue, malformed or
// repeated row IDs. Each problem starts with the line number.
func checkChecklist(text string, idx checklistIndex) []string {
	var problems []string
	add := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
	}
	seen := map[string]int{}
	section, rustTable := "", false
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if m := sectionRe.FindStringSubmatch(line); m != nil {
			section = m[1]
			continue
		}
		if strings.HasPrefix(line, "# ") {
			section, rustTable = "", strings.Contains(line, "Rust")
			continue
		}
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "|"), "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if strings.Trim(line, "|-: ") == "" || cells[0] == "Row" || cells[0] == "Rust" {
			continue // separator or header
		}
		var ids []string
		testCell, notes := "", ""
		switch {
		case rustTable:
			if len(cells) != 2 {
				add(n, "a row of the Rust table needs 2 cells, has %d", len(cells))
				continue
			}
			testCell = cells[1]
			ids = []string{"Rust " + cells[0]}
		default:
			if len(cells) != 3 {
				add(n, "a checklist row needs 3 cells (Row, Test, Notes), has %d", len(cells))
				continue
			}
			testCell, notes = cells[1], cells[2]
			for _, id := range strings.Split(cells[0], ",") {
				id = strings.TrimSpace(id)
				switch {
				case !rowIDRe.MatchString(id):
					add(n, "row ID %q is not like A-01", id)
				case section == "" || id[:1] != section:
					add(n, "row %s is not in its section (## %s)", id, id[:1])
				case seen[id] != 0:
					add(n, "row %s repeats line %d", id, seen[id])
				default:
					seen[id] = n
				}
				ids = append(ids, id)
			}
		}
		row := strings.Join(ids, ", ")
		if strings.Contains(strings.ToLower(line), "not done") {
			add(n, "row %s says \"not done\": give the test, or the reason and the issue that will do it", row)
		}
		tests := 0
		for _, m := range backticked.FindAllStringSubmatch(testCell, -1) {
			name := m[1]
			if target, ok := strings.CutPrefix(name, "make "); ok {
				if !idx.makeTargets[target] {
					add(n, "row %s names `%s`, but the Makefile has no target %q", row, name, target)
				}
				continue
			}
			if p := checkTestName(name, idx); p != "" {
				add(n, "row %s: %s", row, p)
			}
			if testNameRe.MatchString(name) {
				tests++
			}
		}
		if rustTable {
			if tests == 0 {
				add(n, "%s names no Go test", row)
			}
			continue
		}
		deferred := laterRe.MatchString(testCell+" "+notes) || tests == 0 && issueRe.MatchString(notes)
		switch {
		case tests == 0 && notes == "":
			add(n, "row %s has no test and no note saying why", row)
		case deferred && !issueNamedRe.MatchString(testCell+" "+notes):
			add(n, "row %s is left for later without naming the issue (\"issue 11\")", row)
		}
	}
	return problems
}

// checkTestName checks one backticked name of a Test cell: a test,
// fuzz target, benchmark or example (in loopauthtest when prefixed with
// "loopauthtest."), possibly with a subtest pattern, or a helper function.
func checkTestName(name string, idx checklistIndex) string {
	m := testNameRe.FindStringSubmatch(name)
	if m == nil {
		if goIdentRe.MatchString(name) {
			if _, ok := idx.root[name]; ok {
				return ""
			}
			return fmt.Sprintf("no function %s in the package's tests", name)
		}
		return fmt.Sprintf("`%s` is neither a test, a helper nor a make target", name)
	}
	funcs, where := idx.root, "the package's tests"
	if m[1] != "" {
		funcs, where = idx.kit, "loopauthtest's tests"
	}
	fn, ok := funcs[m[2]]
	if !ok {
		return fmt.Sprintf("no %s in %s", m[2], where)
	}
	want := map[string]string{"Test": "*testing.T", "Fuzz": "*testing.F", "Benchmark": "*testing.B", "Example": ""}[m[3]]
	if fn.param != want {
		return fmt.Sprintf("%s takes %q, so go test does not run it as a %s", m[2], fn.param, strings.ToLower(m[3]))
	}
	if m[4] == "" {
		return ""
	}
	if m[3] != "Test" {
		return fmt.Sprintf("%s: only tests have subtests", name)
	}
	// go test names a subtest after its t.Run argument with spaces made
	// underscores; the pattern (a prefix when it ends with "*") must start
	// a string literal of the function, such as the t.Run name or the row
	// ID field of its table.
	for _, seg := range strings.Split(m[5], "/") {
		prefix, isPrefix := strings.CutSuffix(seg, "*")
		found := false
		for _, lit := range fn.literals {
			lit = strings.ReplaceAll(lit, " ", "_")
			if lit == prefix || isPrefix && strings.HasPrefix(lit, prefix) {
				found = true
				break
			}
		}
		if prefix == "" || !found {
			return fmt.Sprintf("%s has no subtest %q (no string literal of it starts so)", m[2], seg)
		}
	}
	return ""
}

// TestChecklist checks testdata/checklist.md, the map of security.md's
// hostile-input rows to tests: every test it names exists, every row has
// a test or a reason, and no row is merely "not done".
func TestChecklist(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "checklist.md"))
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	idx := checklistIndex{root: testFuncs(t, "."), kit: testFuncs(t, "loopauthtest"), makeTargets: makeTargets(string(makefile))}
	for _, p := range checkChecklist(string(text), idx) {
		t.Errorf("testdata/checklist.md %s", p)
	}
}

// TestChecklistChecker proves that checkChecklist rejects what it should
// and accepts the conventions of the file.
func TestChecklistChecker(t *testing.T) {
	idx := checklistIndex{root: testFuncs(t, "."), kit: testFuncs(t, "loopauthtest"), makeTargets: map[string]bool{"cross-vet": true}}
	const head = "# Hostile-input checklist\n\n## X — Certificates\n\n| Row | Test | Notes |\n|---|---|---|\n"
	good := []string{
		"| X-01 | `TestEnsureLocalhostPaths` | |",
		"| X-01 | `TestEnsureLocalhostPaths/X-04*` | |",
		"| X-01 | `TestEnsureLocalhostPaths/X-04_directory_open_to_others` | exact subtest |",
		"| X-01 | `TestEnsureLocalhostFakeMkcert/M-02_M-03_M-04*` | spaces become underscores |",
		"| X-01 | `TestServerConfig/X-08` | |",
		"| X-01, X-02 | `TestSetupGuides`, `TestChecklist` (every row) | |",
		"| X-01 | `assertSecurityHeaders` in `TestCallbackValidOnce` | a helper |",
		"| X-01 | `FuzzParseIDTokenUnverified` | |",
		"| X-01 | `ExampleTokenSet_String` | |",
		"| X-01 | `loopauthtest.TestAuthorizeRejects` | |",
		"| X-01 | `make cross-vet` only | compiled, not run here |",
		"| X-01 | n/a | the setting does not exist |",
		"| X-01 | — | the capability does not exist |",
		"| X-01 | Later | the headless pages, issue 11 |",
		"| X-01 | | covered by the type system, see issue 3 |",
	}
	for _, row := range good {
		if ps := checkChecklist(head+row+"\n", idx); len(ps) != 0 {
			t.Errorf("%s: refused: %q", row, ps)
		}
	}
	bad := []struct{ row, want string }{
		{"| X-01 | `TestNoSuchThing` | |", "no TestNoSuchThing in the package's tests"},
		{"| X-01 | `TestSetupGuides`, `TestNoSuchThing/X-01*` | |", "no TestNoSuchThing"},
		{"| X-01 | `TestEnsureLocalhostPaths/X-99*` | |", `no subtest "X-99*"`},
		{"| X-01 | `TestServerConfig/X-0` | exact name, not a prefix |", `no subtest "X-0"`},
		{"| X-01 | `TestSetupGuides/` | |", `no subtest ""`},
		{"| X-01 | `FuzzNoSuchTarget` | |", "no FuzzNoSuchTarget"},
		{"| X-01 | `BenchmarkNoSuch` | |", "no BenchmarkNoSuch"},
		{"| X-01 | `ExampleNoSuch` | |", "no ExampleNoSuch"},
		{"| X-01 | `loopauthtest.TestSetupGuides` | |", "no TestSetupGuides in loopauthtest's tests"},
		{"| X-01 | `TestingHelperThatIsNotATest` | |", "no TestingHelperThatIsNotATest"},
		{"| X-01 | `noSuchHelper` | |", "no function noSuchHelper"},
		{"| X-01 | `make no-such-target` | reason |", "no target \"no-such-target\""},
		{"| X-01 | `go test -run X` | |", "neither a test"},
		{"| X-01 | | |", "no test and no note"},
		{"| X-01 | - | |", "no test and no note"},
		{"| X-01 | n/a | |", "no test and no note"},
		{"| X-01 | not done | optional 303 |", `says "not done"`},
		{"| X-01 | `TestSetupGuides` | the rest is not done |", `says "not done"`},
		{"| X-01 | Later | the headless pages |", "without naming the issue"},
		{"| X-01 | | left to another issue |", "without naming the issue"},
		{"| X-1 | `TestSetupGuides` | |", `row ID "X-1" is not like A-01`},
		{"| A-01 | `TestSetupGuides` | |", "not in its section"},
		{"| X-01 | `TestSetupGuides` | |\n| X-01 | `TestChecklist` | |", "repeats line 7"},
		{"| X-01 | `TestSetupGuides` |", "needs 3 cells"},
		{"| X-01 | `sanitizeText` | not a test function |", "no function sanitizeText"}, // non-test code is no test
	}
	for _, tc := range bad {
		ps := checkChecklist(head+tc.row+"\n", idx)
		if len(ps) == 0 || !strings.Contains(strings.Join(ps, "\n"), tc.want) {
			t.Errorf("%s: got %q, want a problem with %q", tc.row, ps, tc.want)
		}
	}
	t.Run("Rust table", func(t *testing.T) {
		const rust = "# Rust crate tests → Go tests\n\n| Rust | Go |\n|---|---|\n"
		if ps := checkChecklist(rust+"| pages.rs (9) | `TestErrorPageShowsConfiguredScopes`, `TestPagesEscape` |\n", idx); len(ps) != 0 {
			t.Errorf("refused: %q", ps)
		}
		for row, want := range map[string]string{
			"| pages.rs (9) | `TestNoSuch` |":          "no TestNoSuch",
			"| pages.rs (9) | none |":                  "names no Go test",
			"| pages.rs (9) | `TestPagesEscape` | x |": "needs 2 cells",
		} {
			ps := checkChecklist(rust+row+"\n", idx)
			if !strings.Contains(strings.Join(ps, "\n"), want) {
				t.Errorf("%s: got %q, want %q", row, ps, want)
			}
		}
	})
}

// TestSecurityDocNamesExist checks SECURITY.md, the threat model: every
// test it names exists, and every row of its attacker tables names at
// least one.
func TestSecurityDocNamesExist(t *testing.T) {
	text, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	idx := checklistIndex{root: testFuncs(t, "."), kit: testFuncs(t, "loopauthtest")}
	for _, p := range checkSecurityDoc(string(text), idx) {
		t.Errorf("SECURITY.md %s", p)
	}
}

// checkSecurityDoc returns the problems of the threat model's text.
func checkSecurityDoc(text string, idx checklistIndex) []string {
	var problems []string
	attackers := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "## ") {
			attackers = strings.HasPrefix(line, "## Who attacks")
		}
		names := 0
		for _, m := range backticked.FindAllStringSubmatch(line, -1) {
			if !testNameRe.MatchString(m[1]) {
				continue
			}
			names++
			if p := checkTestName(m[1], idx); p != "" {
				problems = append(problems, fmt.Sprintf("line %d: %s", i+1, p))
			}
		}
		row := strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| It tries to")
		if attackers && row && names == 0 {
			problems = append(problems, fmt.Sprintf("line %d: a defence without a test", i+1))
		}
	}
	return problems
}

// TestSecurityDocChecker proves that checkSecurityDoc rejects a missing
// test and a row without one.
func TestSecurityDocChecker(t *testing.T) {
	idx := checklistIndex{root: testFuncs(t, "."), kit: testFuncs(t, "loopauthtest")}
	for doc, want := range map[string]int{
		"## Who attacks\n\n| It tries to | Defence | Rows | Tests |\n|---|---|---|---|\n| a | b | C-01 | `TestListenLoopback` |\n": 0,
		"## Who attacks\n\n| a | b | C-01 | `TestNoSuchThing` |\n":                                                                 1,
		"## Who attacks\n\n| a | b | C-01 | none |\n":                                                                              1,
		"## Known limits\n\n| a | b | none |\n":                                                                                    0,
		"Named in prose: `TestNoSuchThing`.\n":                                                                                     1,
	} {
		if got := checkSecurityDoc(doc, idx); len(got) != want {
			t.Errorf("%q: %d problems %q, want %d", doc, len(got), got, want)
		}
	}
}
