package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) newConfigCmd() *cobra.Command {
	cfgCmd := &cobra.Command{
		Use:   "config",
		Short: "Check configuration files",
		Args:  cobra.NoArgs,
		RunE: a.command(func(cmd *cobra.Command, _ []string) error {
			return usagef("config: missing subcommand (try 'sngate config check FILE')")
		}),
	}
	var quiet bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a config file and print the effective configuration",
		Long: `Validate a YAML config file and print the effective configuration as YAML:
the embedded defaults, overlaid with FILE, overlaid with SNGATE_...
environment variables (as 'sngate serve --config FILE' would see them,
before its own flags).

An unknown key, a value of the wrong type or out of range is reported with
its key and file (and line), and the exit status is 2. Files it names
(certificates, password and ACL files) are not opened: 'serve' checks them
at start.`,
		Args: exactArgs(1, "FILE"),
		RunE: a.command(func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(loadOptions{File: args[0], Environ: a.environ()})
			if err != nil {
				return err
			}
			if quiet {
				return nil
			}
			out, err := marshalConfig(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "# %s: ok; effective configuration:\n%s", args[0], out)
			return nil
		}),
	}
	check.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing when the file is valid (for scripts and ExecStartPre)")
	cfgCmd.AddCommand(check)
	return cfgCmd
}
