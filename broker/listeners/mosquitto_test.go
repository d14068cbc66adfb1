package listeners

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"
)

// Interoperability with Mosquitto's command-line clients.

func mosquittoTools(t *testing.T) (pub, sub string) {
	t.Helper()
	pub, err1 := exec.LookPath("mosquitto_pub")
	sub, err2 := exec.LookPath("mosquitto_sub")
	if err1 != nil || err2 != nil {
		t.Skip("mosquitto_pub/mosquitto_sub not installed (apt-get install mosquitto-clients); skipping the interoperability test")
	}
	return pub, sub
}

func TestMosquittoClients(t *testing.T) {
	pubBin, subBin := mosquittoTools(t)
	_, addr := setup(t, Config{})
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	run := func(t *testing.T, bin string, args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
		}
		return string(out)
	}

	for _, v := range []string{"mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			topic := "mosq/" + v
			// Retained, QoS 1: a later subscriber gets it.
			run(t, pubBin, "-V", v, "-q", "1", "-r", "-t", topic+"/ret", "-m", "kept")
			if out := run(t, subBin, "-V", v, "-q", "1", "-t", topic+"/ret", "-C", "1", "-v"); out != topic+"/ret kept\n" {
				t.Fatalf("retained: %q", out)
			}

			// Live QoS 1 and 2 to a waiting mosquitto_sub.
			live := startSub(t, ctx, subBin, host, port, "-V", v, "-q", "2", "-t", topic+"/live", "-C", "2", "-v")
			run(t, pubBin, "-V", v, "-q", "1", "-t", topic+"/live", "-m", "one")
			run(t, pubBin, "-V", v, "-q", "2", "-t", topic+"/live", "-m", "two")
			if got := live.messages(t, topic); got != topic+"/live one\n"+topic+"/live two\n" {
				t.Fatalf("live: %q", got)
			}

			// Will: mosquitto_sub killed without DISCONNECT.
			w := dialV5(t, addr, "will-watch-"+v, nil)
			w.sub(t, paho.SubscribeOptions{Topic: topic + "/will", QoS: 1})
			dying := startSub(t, ctx, subBin, host, port, "-V", v, "-t", topic+"/ignored",
				"--will-topic", topic+"/will", "--will-payload", "mosquitto died", "--will-qos", "1")
			dying.cmd.Process.Kill()
			dying.cmd.Wait()
			if m := w.recv(t); string(m.Payload) != "mosquitto died" {
				t.Fatalf("will %q", m.Payload)
			}
		})
	}
}

// mosqSub is a running mosquitto_sub.
type mosqSub struct {
	cmd   *exec.Cmd
	lines chan string
}

// startSub starts mosquitto_sub in debug mode and returns once the broker
// has acknowledged its subscription.
func startSub(t *testing.T, ctx context.Context, bin, host, port string, args ...string) *mosqSub {
	t.Helper()
	// mosquitto_sub block-buffers its output into a pipe; stdbuf makes
	// it line-buffered so that we see the SUBACK when it happens.
	stdbuf, err := exec.LookPath("stdbuf")
	if err != nil {
		t.Skip("stdbuf (coreutils) not installed; cannot follow mosquitto_sub's output")
	}
	cmd := exec.CommandContext(ctx, stdbuf, append([]string{"-oL", bin, "-d", "-h", host, "-p", port}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &mosqSub{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		io.Copy(io.Discard, out)
	}()
	for line := range s.lines {
		if strings.Contains(line, "received SUBACK") {
			return s
		}
	}
	cmd.Wait()
	t.Fatal("mosquitto_sub ended before its SUBACK")
	return nil
}

// messages waits for mosquitto_sub to exit and returns its "-v" output
// lines for topics under prefix.
func (s *mosqSub) messages(t *testing.T, prefix string) string {
	t.Helper()
	var b strings.Builder
	for line := range s.lines {
		if strings.HasPrefix(line, prefix) {
			b.WriteString(line + "\n")
		}
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	return b.String()
}
