package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"
)

// snippetMarker names the source of the README's Go block that follows it:
// a whole file, or the body of one of its functions (one tab less indented):
//
//	<!-- snippet: examples/hello/main.go -->
//	<!-- snippet: examples/hello/snippets_test.go readmeWorker -->
var snippetMarker = regexp.MustCompile(`^<!-- snippet: (\S+)(?: (\w+))? -->$`)

// TestReadmeSnippets keeps every Go block of the README the text of code that
// compiles: each is preceded by a marker and equals what it names.
func TestReadmeSnippets(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	shown := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```go" {
			continue
		}
		start := i + 1
		for i++; i < len(lines) && lines[i] != "```"; i++ {
		}
		block := strings.Join(lines[start:i], "\n") + "\n"
		prev := start - 2
		for prev >= 0 && strings.TrimSpace(lines[prev]) == "" {
			prev--
		}
		var m []string
		if prev >= 0 {
			m = snippetMarker.FindStringSubmatch(lines[prev])
		}
		if m == nil {
			t.Errorf("README.md:%d: a Go block without a snippet marker above it; put the code in a compiled file and add e.g. <!-- snippet: examples/hello/snippets_test.go readmeX -->", start)
			continue
		}
		want, err := snippet(m[1], m[2])
		if err != nil {
			t.Errorf("README.md:%d: %v", start, err)
			continue
		}
		shown[strings.TrimSpace(m[1]+" "+m[2])] = true
		if block != want {
			t.Errorf("README.md:%d: the Go block differs from %s %s at its line %d:\n README: %q\n source: %q",
				start, m[1], m[2], firstDiff(block, want), lineAt(block, firstDiff(block, want)), lineAt(want, firstDiff(block, want)))
		}
	}
	for _, s := range []string{"examples/hello/main.go", "examples/hello/snippets_test.go readmeBlueprint", "examples/hello/snippets_test.go readmeWorker"} {
		if !shown[s] {
			t.Errorf("README.md does not show %s", s)
		}
	}
}

// snippet is a file of the repository, or the body of its function fn.
func snippet(path, fn string) (string, error) {
	src, err := os.ReadFile("../../" + path)
	if err != nil || fn == "" {
		return string(src), err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return "", err
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == fn {
			body := string(src[fset.Position(fd.Body.Lbrace).Offset+1 : fset.Position(fd.Body.Rbrace).Offset])
			body = strings.TrimPrefix(body, "\n")
			return regexp.MustCompile(`(?m)^\t`).ReplaceAllString(body, ""), nil
		}
	}
	return "", os.ErrNotExist
}

// firstDiff is the number (from 1) of the first line where a and b differ.
func firstDiff(a, b string) int {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

func lineAt(s string, n int) string {
	if l := strings.Split(s, "\n"); n-1 < len(l) {
		return l[n-1]
	}
	return "(end)"
}
