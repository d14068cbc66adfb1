package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func reflectTypeOfConfig() reflect.Type { return reflect.TypeOf(Config{}) }

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is the outcome of an in-process run.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command line in-process with the given stdin and
// environment (KEY=VALUE strings; the process environment is not used).
func runCLI(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	return runCLICtx(context.Background(), t, strings.NewReader(stdin), env, args...)
}

func runCLICtx(ctx context.Context, t *testing.T, stdin io.Reader, env []string, args ...string) result {
	t.Helper()
	var out, errb syncBuffer
	a := &app{
		ctx:    ctx,
		stdin:  stdin,
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string {
			for _, kv := range env {
				if name, v, ok := strings.Cut(kv, "="); ok && name == k {
					return v
				}
			}
			return ""
		},
		environ: func() []string { return append([]string(nil), env...) },
	}
	code := a.run(args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}
