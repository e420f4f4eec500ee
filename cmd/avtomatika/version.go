package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

func versionCommand() *command {
	return &command{
		name: "version", minArgs: 0, maxArgs: 0,
		summary: "print the version of this program",
		help: `The version is the module version the binary was built from ("go install
...@v1.2.3"), or "dev" for a build from a working tree.`,
		setup: func(*flag.FlagSet) action {
			return func(_ context.Context, a *app, _ []string) error {
				v := buildVersion()
				if a.g.json {
					return a.printJSON(map[string]string{"version": v, "go": runtime.Version()})
				}
				_, err := fmt.Fprintf(a.stdout, "avtomatika %s (%s %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return err
			}
		},
	}
}

// buildVersion is the main module's version, or "dev" when the build has
// none (a build from a working tree, or tests).
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return "dev"
	}
	return info.Main.Version
}
