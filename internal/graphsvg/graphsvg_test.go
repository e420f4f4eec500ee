package graphsvg

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const source = `digraph "g" {
  "__start__" [shape=point];
  "__start__" -> "a" [class="taken"];
  "a" [label="a", class="visited"];
  "b" [label="b <&>", class="current"];
  "c" [label="c", peripheries=2, color=darkgreen];
  "a" -> "b" [label="success", class="taken"];
  "a" -> "c" [label="failure"];
}`

func TestRender(t *testing.T) {
	svg, err := Render(context.Background(), source)
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("not XML: %v\n%s", err, s)
	}
	for _, frag := range []string{`class="node current"`, `class="node visited"`, `class="edge taken"`, `<title>b</title>`, `b &lt;&amp;&gt;`, `viewBox=`} {
		if !strings.Contains(s, frag) {
			t.Errorf("SVG lacks %s:\n%s", frag, s)
		}
	}
	// The console's Content-Security-Policy refuses inline styles and scripts.
	if strings.Contains(s, "style=") || strings.Contains(s, "<script") || strings.Contains(s, "<style") {
		t.Errorf("SVG has styles or scripts:\n%s", s)
	}
}

func TestRenderErrors(t *testing.T) {
	if _, err := Render(context.Background(), "digraph { a -> "); err == nil {
		t.Error("broken DOT rendered")
	}
	if _, err := Render(context.Background(), strings.Repeat(" ", maxSource+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized source: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Render(ctx, source); err == nil {
		t.Error("rendered with a cancelled context")
	}
	// A failed render leaves the renderer usable.
	if _, err := Render(context.Background(), source); err != nil {
		t.Fatal(err)
	}
}

func TestRenderConcurrent(t *testing.T) {
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := Render(context.Background(), source)
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// slowGraph is a graph of n nodes with five edges each; dot takes about
// 2 s to lay out 60 (0.2 s for 30) on the CI machine.
func slowGraph(n int) string {
	var b strings.Builder
	b.WriteString("digraph g {\n")
	for i := range n {
		for j := 1; j <= 5; j++ {
			fmt.Fprintf(&b, "n%d -> n%d;\n", i, (i*7+j*13)%n)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// TestRenderWaitEndsWithContext: a render waiting for another's turn gives
// up when its context ends, not when the other render does.
func TestRenderWaitEndsWithContext(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := Render(context.Background(), slowGraph(60))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the slow render has the turn
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Render(ctx, source)
	waited := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || waited > time.Second {
		t.Fatalf("waiting render: %v after %v, want the deadline after about 100 ms", err, waited)
	}
	select {
	case <-done:
		t.Fatal("the slow render ended before the waiting one gave up: nothing was tested")
	default:
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := Render(context.Background(), source); err != nil {
		t.Fatal(err)
	}
}
