package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of the sngate process.
const (
	exitOK      = 0 // success
	exitRuntime = 1 // a runtime or network failure
	exitUsage   = 2 // a command-line or configuration mistake
)

// usageError marks command-line and configuration mistakes (exit code 2).
type usageError struct{ err error }

// Error returns the wrapped error's text.
func (e usageError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// asUsage marks err as a usage error (nil stays nil).
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	return usageError{err}
}

// app is one invocation of the command line: its streams and environment.
// Tests run several in one process, so nothing here is global.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// getenv reads the environment; only cmd/sngate reads it.
	getenv func(string) string
	// environ lists the environment as KEY=VALUE strings.
	environ func() []string
	// started is set once a command's RunE begins: errors before that
	// come from cobra's parsing and are usage errors.
	started bool
}

// exitCode maps an error from a command to the process exit status:
// 2 for usage and configuration errors (and for anything cobra rejects
// before a command runs), 1 for everything else.
func (a *app) exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) || !a.started {
		return exitUsage
	}
	return exitRuntime
}

// run executes the command line args and returns the exit status. The
// error, if any, is printed as one line on stderr.
func (a *app) run(args []string) int {
	root := a.newRootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(a.ctx)
	if err != nil {
		msg := strings.TrimSpace(err.Error())
		msg = strings.ReplaceAll(msg, "\n", "; ")
		fmt.Fprintln(a.stderr, "sngate:", msg)
		if !a.started {
			fmt.Fprintln(a.stderr, "Run 'sngate --help' for usage.")
		}
	}
	return a.exitCode(err)
}

// command wraps a RunE so that errors it returns count as runtime errors
// unless marked as usage errors.
func (a *app) command(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.started = true
		return f(cmd, args)
	}
}

// exactArgs is cobra.ExactArgs with a clearer message.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s: want %d argument(s) %s, got %d", cmd.CommandPath(), n, names, len(args))
		}
		return nil
	}
}

func (a *app) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sngate",
		Short: "MQTT-SN gateway with an integrated MQTT broker",
		Long: `sngate is an MQTT-SN gateway with an integrated MQTT broker, in one binary.

Sensors speak MQTT-SN over UDP, DTLS or serial radio modems; applications
use the broker over MQTT on TCP, TLS or WebSocket. Run 'sngate serve' to
start both with the embedded defaults (MQTT-SN on UDP :1884, MQTT on TCP
:1883). The other commands are tools: pub, sub, dump, bench, config
check, passwd and version.

Help is --help: -h is the host option of pub and sub.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runs once flags and arguments are accepted: from here on an
		// error is a runtime failure unless marked as a usage error.
		PersistentPreRun: func(*cobra.Command, []string) { a.started = true },
		// No RunE: 'sngate' alone prints the help.
	}
	// Help is --help only: -h is the host of pub/sub, as in mosquitto_pub.
	root.PersistentFlags().Bool("help", false, "show help for the command")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%s: %w", cmd.CommandPath(), err)
	})
	root.AddCommand(
		a.newServeCmd(),
		a.newPubCmd(),
		a.newSubCmd(),
		a.newDumpCmd(),
		a.newConfigCmd(),
		a.newPasswdCmd(),
		a.newVersionCmd(),
		newBenchCmd(),
	)
	return root
}

// newApp returns an app bound to the process's streams and environment.
func newApp(ctx context.Context) *app {
	return &app{
		ctx:     ctx,
		stdin:   os.Stdin,
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		getenv:  os.Getenv,
		environ: os.Environ,
	}
}
