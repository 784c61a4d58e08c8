package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/fleet"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
)

const reportUsage = `cwmp-fleet report: the fleet's reports

  cwmp-fleet report merge [--out FILE] [--html FILE] SHARD.json...
                          one report of a fleet run as shards: counts and rates added up,
                          percentiles from the merged histograms
  cwmp-fleet report html [--out FILE] REPORT.json
                          the HTML page of a report (default: beside it, .html)
`

// cmdReport handles "report merge" and "report html".
func cmdReport(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, reportUsage)
		return errors.New("report: merge or html?")
	}
	switch args[0] {
	case "merge":
		return cmdReportMerge(args[1:])
	case "html":
		return cmdReportHTML(args[1:])
	case "help", "--help", "-h":
		fmt.Print(reportUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, reportUsage)
	return fmt.Errorf("report: unknown command %q", args[0])
}

func cmdReportMerge(args []string) error {
	fs := cli.NewFlags(program, "report merge", "[--out FILE] [--html FILE] SHARD.json...")
	out := fs.String("out", "-", "write the merged JSON report here (\"-\": standard output)")
	htmlOut := fs.String("html", "", "also write the merged report's HTML page here")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("report merge: name the shards' report files")
	}
	reps := make([]*fleet.Report, 0, fs.NArg())
	for _, p := range fs.Args() {
		r, err := readReport(p)
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	m, err := fleet.Merge(reps)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		// Numbers no JSON can hold (sums past the float range).
		return fmt.Errorf("report merge: %w", err)
	}
	b = append(b, '\n')
	if *out == "-" {
		os.Stdout.Write(b)
	} else if err := atomicfile.Write(*out, b, 0o644); err != nil {
		return err
	}
	if *htmlOut != "" {
		return writeHTML(*htmlOut, m)
	}
	return nil
}

func cmdReportHTML(args []string) error {
	fs := cli.NewFlags(program, "report html", "[--out FILE] REPORT.json")
	out := fs.String("out", "", "the HTML file (default: the report's name with .html)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("report html: name one report file")
	}
	r, err := readReport(fs.Arg(0))
	if err != nil {
		return err
	}
	if *out == "" {
		*out = htmlBeside(fs.Arg(0))
	}
	return writeHTML(*out, r)
}

func readReport(path string) (*fleet.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := fleet.ReadReport(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
