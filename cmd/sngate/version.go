package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the release version; builds may set it with
// -ldflags "-X main.version=v1.2.3". Otherwise the module version from
// the build info is used.
var version = ""

// buildInfo describes this binary.
type buildInfo struct {
	Version   string
	Commit    string
	Time      string
	Modified  bool
	GoVersion string
	Platform  string
}

// readBuildInfo collects version and VCS data from the binary.
func readBuildInfo() buildInfo {
	bi := buildInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if ok {
		if bi.Version == "" {
			bi.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				bi.Commit = s.Value
			case "vcs.time":
				bi.Time = s.Value
			case "vcs.modified":
				bi.Modified = s.Value == "true"
			}
		}
	}
	if bi.Version == "" {
		bi.Version = "(devel)"
	}
	return bi
}

// String renders the version on one line.
func (b buildInfo) String() string {
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	} else if len(commit) > 12 {
		commit = commit[:12]
	}
	if b.Modified {
		commit += "+dirty"
	}
	s := fmt.Sprintf("sngate %s (commit %s", b.Version, commit)
	if b.Time != "" {
		s += ", " + b.Time
	}
	return s + ") " + b.GoVersion + " " + b.Platform
}

func (a *app) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: a.command(func(*cobra.Command, []string) error {
			fmt.Fprintln(a.stdout, readBuildInfo())
			return nil
		}),
	}
}
