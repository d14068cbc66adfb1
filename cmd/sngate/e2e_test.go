package main

// End-to-end tests of the sngate binary: serve, pub, sub, dump, metrics,
// $SYS, SIGHUP and SIGTERM, against real MQTT clients (mosquitto_pub and
// mosquitto_sub, when installed).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sngateBin is the binary built once by TestMain.
var sngateBin string

// hangGuard bounds how long a test waits for an event before failing;
// it only turns a hang into a failure, it measures nothing.
const hangGuard = 60 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sngate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sngateBin = filepath.Join(dir, "sngate")
	build := exec.Command("go", "build", "-o", sngateBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sngate:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cleanEnv is the process environment without SNGATE_ variables.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// proc is a running child process whose stdout and stderr lines are
// delivered on channels (and kept for failure messages).
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdout chan string
	stderr chan string
	mu     sync.Mutex
	log    []string
	exited chan struct{}
	err    error
}

func startProc(t *testing.T, name string, stdin io.Reader, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), stdout: make(chan string, 1024),
		stderr: make(chan string, 1024), exited: make(chan struct{})}
	p.cmd.Env = cleanEnv()
	p.cmd.Stdin = stdin
	outR, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var wg sync.WaitGroup
	pump := func(r io.Reader, ch chan string) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log = append(p.log, sc.Text())
			p.mu.Unlock()
			select {
			case ch <- sc.Text():
			default: // nobody reads this stream: keep the log only
			}
		}
		close(ch)
	}
	wg.Add(2)
	go pump(outR, p.stdout)
	go pump(errR, p.stderr)
	go func() {
		wg.Wait()
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// waitLine returns the first line on ch that matches re.
func (p *proc) waitLine(ch chan string, re *regexp.Regexp) []string {
	p.t.Helper()
	timer := time.NewTimer(hangGuard)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-ch:
			if !ok {
				p.t.Fatalf("%s ended before printing %q; output:\n%s", p.name, re, p.output())
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-timer.C:
			p.t.Fatalf("%s: no line matching %q; output:\n%s", p.name, re, p.output())
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(hangGuard):
		p.t.Fatalf("%s did not exit; output:\n%s", p.name, p.output())
	}
	return p.cmd.ProcessState.ExitCode()
}

// serveInfo is a running 'sngate serve'.
type serveInfo struct {
	*proc
	mqttPort string
	snPort   string
	metrics  string
	logs     chan map[string]any
}

// startServe runs 'sngate serve' on free ports, with JSON logs, and
// waits for its ready line.
func startServe(t *testing.T, extra ...string) *serveInfo {
	t.Helper()
	args := append([]string{"serve", "--sn-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"), "--log-format", "json"}, extra...)
	p := startProc(t, "serve", nil, sngateBin, args...)
	s := &serveInfo{proc: p, logs: make(chan map[string]any, 1024)}
	go func() {
		for line := range p.stderr {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				s.logs <- m
			}
		}
		close(s.logs)
	}()
	ready := s.waitLog("ready")
	addr := func(v any) string {
		l, _ := v.([]any)
		if len(l) == 0 {
			t.Fatalf("ready line lacks an address: %v", ready)
		}
		str, _ := l[0].(string)
		return str
	}
	_, s.mqttPort, _ = net.SplitHostPort(strings.TrimPrefix(addr(ready["mqtt"]), "tcp://"))
	_, s.snPort, _ = net.SplitHostPort(addr(ready["sn_udp"]))
	s.metrics, _ = ready["metrics"].(string)
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			p.wait()
		}
	})
	return s
}

// waitLog returns the next JSON log record with the given msg.
func (s *serveInfo) waitLog(msg string) map[string]any {
	s.t.Helper()
	timer := time.NewTimer(hangGuard)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-s.logs:
			if !ok {
				s.t.Fatalf("serve ended before logging %q; output:\n%s", msg, s.output())
			}
			if m["msg"] == msg {
				return m
			}
		case <-timer.C:
			s.t.Fatalf("serve did not log %q; output:\n%s", msg, s.output())
		}
	}
}

// run runs the binary to completion and returns exit code and output.
func run(t *testing.T, stdin string, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v hung; stderr: %s", bin, args, errb.String())
	}
	var ee *exec.ExitError
	if err != nil && !errorsAs(err, &ee) {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func needMosquitto(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"mosquitto_sub", "mosquitto_pub", "stdbuf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (bash .ci/run installs mosquitto-clients)", tool)
		}
	}
}

// mqttSub starts mosquitto_sub and waits until its subscription is
// acknowledged.
func mqttSub(t *testing.T, port string, args ...string) *proc {
	t.Helper()
	// stdbuf: mosquitto_sub writes through stdio, fully buffered on a pipe.
	p := startProc(t, "mosquitto_sub", nil, "stdbuf", append([]string{"-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", port}, args...)...)
	p.waitLine(p.stdout, regexp.MustCompile(`received SUBACK`))
	return p
}

// snSub starts 'sngate sub' and waits until it has subscribed.
func snSub(t *testing.T, args ...string) *proc {
	t.Helper()
	p := startProc(t, "sngate sub", nil, sngateBin, append([]string{"sub"}, args...)...)
	p.waitLine(p.stderr, regexp.MustCompile(`subscribed as`))
	return p
}

// scrape returns the Prometheus text of /metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: hangGuard}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// sample returns the value of one sample line ("name{labels}") of text.
func sample(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("sample %s: %v", series, err)
			}
			return v
		}
	}
	t.Fatalf("no sample %s in /metrics", series)
	return 0
}
