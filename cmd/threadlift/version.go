package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the Makefile with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print version, commit and Go version (the same as --version)",
		Args:    cobra.NoArgs,
		Example: "  threadlift version\n  threadlift --version",
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(g.stdout, versionText())
			return nil
		},
	}
}

// buildCommit is the commit threadlift was built from: -X main.commit,
// else what the Go toolchain recorded, else "".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// versionText is what `version` and `--version` print.
func versionText() string {
	c := buildCommit()
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("threadlift %s\ncommit: %s\ngo: %s %s/%s", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
