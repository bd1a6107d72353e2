package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/configs"
)

func newInitCommand(g *globalOptions) *cobra.Command {
	var write bool
	cmd := &cobra.Command{
		Use:   "init [--write [-c FILE]]",
		Short: "Print a commented starter config (or write threadlift.yaml)",
		Long: `init prints the commented example config, every key with what it does and
its default, to stdout. With --write it writes it to threadlift.yaml (or the
file -c names) instead, and refuses to overwrite a file that exists.

Then edit zendesk.url, zendesk.email, sources and mapping.ticket, and run
'threadlift check' and 'threadlift validate'.`,
		Example: `  threadlift init > threadlift.yaml
  threadlift init --write                 # threadlift.yaml, never overwritten
  threadlift init --write -c migration/acme.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !write {
				_, err := g.stdout.Write(configs.Example)
				return err
			}
			if err := writeNew(g.config, configs.Example); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s: edit zendesk.url, zendesk.email, sources and mapping.ticket, then run 'threadlift check -c %s'\n", g.config, g.config)
			return nil
		},
	}
	cmd.Flags().BoolVar(&write, "write", false, "write the config to threadlift.yaml (or -c FILE) instead of stdout; never overwrites")
	return cmd
}

// writeNew writes data to path, which must not exist: a temp file in the
// same folder, synced, then linked to path (link fails if path exists, so
// nothing is ever overwritten, even by a file created meanwhile).
func writeNew(path string, data []byte) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: %s exists: not overwritten (remove it, or choose another file with -c)", errUsage, path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s exists: not overwritten", errUsage, path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
