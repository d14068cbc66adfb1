package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sngate/sngate/broker/auth"
	"github.com/spf13/cobra"
)

func (a *app) newPasswdCmd() *cobra.Command {
	var del bool
	cmd := &cobra.Command{
		Use:   "passwd FILE USER",
		Short: "Add, update or delete a user in an MQTT password file",
		Long: `Add USER to the password file FILE (mqtt.password_file), or set a new
password for USER, keeping the other lines. The file holds "user:bcrypt-hash"
lines; it is created with mode 0600 when missing and replaced atomically.

On a terminal the password is asked twice without echo; otherwise it is
the first line of standard input:

  echo 's3cret' | sngate passwd /etc/sngate/passwd alice

A running 'sngate serve' reads the file again on SIGHUP.`,
		Args: exactArgs(2, "FILE USER"),
		RunE: a.command(func(cmd *cobra.Command, args []string) error {
			file, user := args[0], args[1]
			if err := auth.CheckUsername(user); err != nil {
				return usageError{err}
			}
			if del {
				if err := auth.DeleteUser(file, user); err != nil {
					return fmt.Errorf("passwd %s: %w", file, err)
				}
				fmt.Fprintf(a.stderr, "user %q removed from %s\n", user, file)
				return nil
			}
			pw, err := a.readPassword()
			if err != nil {
				return err
			}
			if err := auth.SetPassword(file, user, pw); err != nil {
				return fmt.Errorf("passwd %s: %w", file, err)
			}
			fmt.Fprintf(a.stderr, "password of %q set in %s\n", user, file)
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&del, "delete", "D", false, "delete USER instead of setting a password")
	return cmd
}

// maxPassword bounds a password (bcrypt uses at most 72 bytes).
const maxPassword = 72

// readPassword reads a password: twice without echo from a terminal, or
// one line from non-terminal standard input.
func (a *app) readPassword() ([]byte, error) {
	if f, ok := a.stdin.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(a.stderr, "Password: ")
		p1, err := readNoEcho(f)
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(a.stderr, "Again: ")
		p2, err := readNoEcho(f)
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(p1, p2) {
			return nil, usagef("passwords do not match")
		}
		return checkPassword(p1)
	}
	line, err := bufio.NewReader(a.stdin).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	return checkPassword(bytes.TrimRight(line, "\r\n"))
}

func checkPassword(p []byte) ([]byte, error) {
	switch {
	case len(p) == 0:
		return nil, usagef("empty password (give it on the first line of standard input)")
	case len(p) > maxPassword:
		return nil, usagef("password longer than %d bytes (bcrypt ignores the rest)", maxPassword)
	}
	return p, nil
}

// readLine reads one line from r, byte by byte so nothing past the line
// is consumed.
func readLine(r io.Reader) ([]byte, error) {
	var out []byte
	var b [1]byte
	for len(out) <= 1024 {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				return bytes.TrimRight(out, "\r"), nil
			}
			out = append(out, b[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
	}
	return nil, errors.New("line too long")
}
