package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// usageError marks command-line and configuration mistakes (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode maps an error from a command to the process exit status:
// 2 for usage and configuration errors, 1 for everything else.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "sngate",
		Short:         "MQTT-SN gateway with an integrated MQTT broker",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(&cobra.Command{
		Use:   "serve",
		Short: "Run the MQTT-SN gateway and MQTT broker",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("serve: the gateway engine is not built yet (see README)")
		},
	})
	return root
}
