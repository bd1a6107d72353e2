package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// withCPUProfile makes c write a pprof CPU profile of its run to
// --cpuprofile FILE (a hidden flag, for performance work), whatever the
// run returns.
func withCPUProfile(g *globalOptions, c *cobra.Command) {
	run := c.RunE
	if run == nil {
		return
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if g.cpuProfile == "" {
			return run(cmd, args)
		}
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return fmt.Errorf("%w: --cpuprofile: %w", errUsage, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("%w: --cpuprofile: %w", errUsage, err)
		}
		err = run(cmd, args)
		pprof.StopCPUProfile()
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("write CPU profile %s: %w", g.cpuProfile, cerr))
		}
		return err
	}
}
