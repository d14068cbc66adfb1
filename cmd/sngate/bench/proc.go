package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// procSample is one reading of a process's memory and CPU time.
type procSample struct {
	RSS    int64   // resident set size in bytes
	CPU    float64 // user plus system CPU seconds
	HeapGo int64   // Go heap in use after a GC, for the in-process gateway only
	ok     bool
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times. It is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// readProc reads /proc/PID/status (VmRSS) and /proc/PID/stat (utime and
// stime).
func readProc(pid int) (procSample, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	var s procSample
	st, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("bench: read process %d: %w", pid, err)
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces: state is field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return s, fmt.Errorf("bench: %s/stat: no command name", dir)
	}
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("bench: %s/stat: %d fields", dir, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("bench: %s/stat: bad CPU times", dir)
	}
	s.CPU = float64(ut+stime) / clockTicks
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("bench: read process %d: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return s, fmt.Errorf("bench: %s/status: VmRSS %q", dir, rest)
			}
			s.RSS = kb * 1024
		}
	}
	s.ok = true
	return s, nil
}

// readMetrics scrapes a Prometheus text endpoint for the process
// collector's resident memory and CPU seconds.
func readMetrics(ctx context.Context, url string) (procSample, error) {
	var s procSample
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, fmt.Errorf("bench: metrics URL %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("bench: scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("bench: scrape %s: %s", url, resp.Status)
	}
	var haveRSS, haveCPU bool
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err == nil {
				s.RSS, haveRSS = int64(v), true
			}
		case "process_cpu_seconds_total":
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err == nil {
				s.CPU, haveCPU = v, true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("bench: scrape %s: %w", url, err)
	}
	if !haveRSS || !haveCPU {
		return s, fmt.Errorf("bench: %s has no process_resident_memory_bytes or process_cpu_seconds_total", url)
	}
	s.ok = true
	return s, nil
}

// prober samples the gateway process, if the run can see it.
type prober struct {
	pid     int
	url     string
	inProc  bool // the gateway runs in this process (Local)
	source  string
	lastErr error
}

func newProber(cfg *Config) *prober {
	switch {
	case cfg.Local:
		return &prober{pid: os.Getpid(), inProc: true, source: "in-process (includes the load generator)"}
	case cfg.PID > 0:
		return &prober{pid: cfg.PID, source: "pid " + strconv.Itoa(cfg.PID)}
	case cfg.MetricsURL != "":
		return &prober{url: cfg.MetricsURL, source: cfg.MetricsURL}
	}
	return &prober{}
}

// sample reads the gateway's figures; a failure is remembered, not fatal.
func (p *prober) sample(ctx context.Context) procSample {
	var s procSample
	var err error
	switch {
	case p.pid > 0:
		s, err = readProc(p.pid)
	case p.url != "":
		s, err = readMetrics(ctx, p.url)
	default:
		return s
	}
	if err != nil {
		p.lastErr = err
		return procSample{}
	}
	if p.inProc {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.HeapGo = int64(ms.HeapInuse)
	}
	return s
}

// selfCPU returns this process's CPU seconds, or 0 when unknown.
func selfCPU() float64 {
	s, err := readProc(os.Getpid())
	if err != nil {
		return 0
	}
	return s.CPU
}
