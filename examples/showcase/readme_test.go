package main

import (
	"os"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/blueprints"
)

// TestReadmeGraphsMatchTheBlueprints keeps the README's graphs true to the code.
func TestReadmeGraphsMatchTheBlueprints(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, bp := range blueprints.All(blueprints.Options{}) {
		block := "### " + bp.Name() + "\n\n```mermaid\n" + bp.Mermaid() + "```"
		if !strings.Contains(string(readme), block) {
			t.Errorf("README.md does not show the current graph of %s; regenerate it with\n  avtomatika blueprints graph %s --format mermaid", bp.Name(), bp.Name())
		}
	}
}
