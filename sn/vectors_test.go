package sn

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The captured frames of ../../shared/vectors (see README.txt there) are
// copied into testdata/vectors.txt so that these tests never skip. Refresh
// the copy and the fuzz seed corpus with:
//
//	go test ./sn -run TestSharedVectors -update
var update = flag.Bool("update", false, "rewrite testdata/vectors.txt and the FuzzDecode seed corpus from ../../shared/vectors")

const (
	sharedVectorsDir = "../../shared/vectors"
	vectorsFile      = "testdata/vectors.txt"
)

// invalidVectors are the deliberately invalid frames of
// edge_error_paths_raw_client, keyed by hex, with the error each must give.
var invalidVectors = map[string]error{
	// PUBLISH with the reserved TopicIdType 0b11.
	"1d0c2300010007726573657276656420746f7069632069642074797065": ErrReserved,
	// Length byte 16 in a 10-byte datagram.
	"100c0000010000616263": ErrBadLength,
	// Unknown message type 0x55.
	"035500": ErrUnknownType,
}

// vector is one captured MQTT-SN datagram.
type vector struct {
	source string // capture name and frame number
	frame  []byte
}

// readSharedVectors returns every MQTT-SN datagram of the shared captures,
// deduplicated, in capture order.
func readSharedVectors(dir string) ([]vector, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.frames.txt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, os.ErrNotExist
	}
	sort.Strings(files)
	seen := map[string]bool{}
	var out []vector
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		capture := strings.TrimSuffix(filepath.Base(name), ".frames.txt")
		for sc.Scan() {
			cols := strings.Split(sc.Text(), "\t")
			if len(cols) < 6 || strings.HasPrefix(cols[0], "#") || cols[2] != "MQTT-SN" {
				continue
			}
			if seen[cols[5]] {
				continue
			}
			seen[cols[5]] = true
			b, err := hex.DecodeString(cols[5])
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s frame %s: %w", capture, cols[1], err)
			}
			out = append(out, vector{source: capture + ":" + cols[1], frame: b})
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readVectorsFile reads testdata/vectors.txt: "source<TAB>hex" lines.
func readVectorsFile(t *testing.T) []vector {
	t.Helper()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("read %s: %v", vectorsFile, err)
	}
	var out []vector
	for i, ln := range strings.Split(string(data), "\n") {
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		src, hx, ok := strings.Cut(ln, "\t")
		b, err := hex.DecodeString(hx)
		if !ok || err != nil {
			t.Fatalf("%s:%d: bad line", vectorsFile, i+1)
		}
		out = append(out, vector{source: src, frame: b})
	}
	return out
}

// canonical returns frame re-encoded with the shortest length form, which
// is what Append produces. Only a 3-byte form whose total fits one byte
// changes.
func canonical(frame []byte) []byte {
	if len(frame) >= 4 && frame[0] == longLengthMarker && len(frame)-2 <= maxShortLength {
		return append([]byte{byte(len(frame) - 2)}, frame[3:]...)
	}
	return frame
}

// checkVector decodes one captured frame and checks the expected outcome:
// the right sentinel error for the known-invalid frames, otherwise a
// re-encoding identical to the (canonical) input.
func checkVector(t *testing.T, v vector) {
	t.Helper()
	var p Packet
	err := Decode(v.frame, &p)
	if want, bad := invalidVectors[hex.EncodeToString(v.frame)]; bad {
		if !errors.Is(err, want) {
			t.Errorf("%s: Decode(%x) = %v, want %v", v.source, v.frame, err, want)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: Decode(%x): %v", v.source, v.frame, err)
		return
	}
	got, err := p.Append(nil)
	if err != nil {
		t.Errorf("%s: re-encode %s: %v", v.source, p.String(), err)
		return
	}
	want := canonical(v.frame)
	if p.LongLength != (v.frame[0] == longLengthMarker) {
		t.Errorf("%s: LongLength = %v for %x", v.source, p.LongLength, v.frame[:1])
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %s\nre-encoded %x\nwant       %x", v.source, p.String(), got, want)
	}
	if p.Type == TypeEncapsulated {
		var inner Packet
		if _, err := Decapsulate(v.frame, &inner); err != nil {
			t.Errorf("%s: Decapsulate: %v", v.source, err)
		}
	}
}

// TestVectors runs every captured frame (from the testdata copy) through
// decode and re-encode.
func TestVectors(t *testing.T) {
	vs := readVectorsFile(t)
	if len(vs) < 200 {
		t.Fatalf("only %d vectors in %s", len(vs), vectorsFile)
	}
	invalid := 0
	for _, v := range vs {
		if _, bad := invalidVectors[hex.EncodeToString(v.frame)]; bad {
			invalid++
		}
		checkVector(t, v)
	}
	if invalid != len(invalidVectors) {
		t.Errorf("found %d of the %d invalid frames", invalid, len(invalidVectors))
	}
}

// TestSharedVectors runs the same checks on ../../shared/vectors directly
// and verifies that the testdata copy is complete. With -update it rewrites
// the copy and the fuzz seed corpus.
func TestSharedVectors(t *testing.T) {
	vs, err := readSharedVectors(sharedVectorsDir)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no captures at %s (the shared/ directory beside the checkout); testdata/vectors.txt covers them", sharedVectorsDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		writeVectorsFile(t, vs)
		writeFuzzSeeds(t, vs)
	}
	have := map[string]bool{}
	for _, v := range readVectorsFile(t) {
		have[hex.EncodeToString(v.frame)] = true
	}
	for _, v := range vs {
		if !have[hex.EncodeToString(v.frame)] {
			t.Errorf("%s missing from %s; run with -update", v.source, vectorsFile)
		}
		checkVector(t, v)
	}
}

func writeVectorsFile(t *testing.T, vs []vector) {
	var b strings.Builder
	b.WriteString("# Every distinct MQTT-SN datagram of ../shared/vectors/*.frames.txt (capture:frame<TAB>hex).\n")
	b.WriteString("# Regenerate: go test ./sn -run TestSharedVectors -update\n")
	for _, v := range vs {
		b.WriteString(v.source + "\t" + hex.EncodeToString(v.frame) + "\n")
	}
	if err := os.WriteFile(vectorsFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFuzzSeeds writes one FuzzDecode seed per distinct kind of captured
// frame (type, inner type and node ID size, QoS and topic type, length
// form), plus every invalid frame; the forwarder frames among them also
// seed FuzzDecapsulate.
func writeFuzzSeeds(t *testing.T, vs []vector) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	encDir := filepath.Join("testdata", "fuzz", "FuzzDecapsulate")
	for _, d := range []string{dir, encDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(d, "vector-*"))
		for _, f := range old {
			os.Remove(f)
		}
	}
	kinds := map[string]bool{}
	for _, v := range vs {
		var p Packet
		err := Decode(v.frame, &p)
		kind := p.Type.String() + strconv.FormatBool(p.LongLength) +
			strconv.FormatBool(bytes.Equal(canonical(v.frame), v.frame))
		if err != nil {
			kind = "invalid-" + hex.EncodeToString(v.frame)
		} else if p.Type == TypeEncapsulated {
			var in Packet
			Decode(p.Encapsulated.Message, &in)
			kind += "-" + in.Type.String() + strconv.Itoa(len(p.Encapsulated.NodeID))
		} else if p.Type == TypePublish {
			kind += p.Publish.QoS.String() + p.Publish.TopicIDType.String()
		}
		if kinds[kind] {
			continue
		}
		kinds[kind] = true
		name := fmt.Sprintf("vector-%s", strings.NewReplacer(":", "-", "_", "-").Replace(v.source))
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(v.frame)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if p.Type == TypeEncapsulated {
			if err := os.WriteFile(filepath.Join(encDir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
