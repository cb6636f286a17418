// Command edgeguard is the edge filter as a reverse-proxy binary: it reads a
// YAML config, filters every request through the chain it describes and
// forwards what passes. See `edgeguard help`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

const usage = `edgeguard — a WAF-style edge filter

Usage:
  edgeguard run -config FILE        serve (SIGHUP reloads, SIGTERM drains)
  edgeguard validate -config FILE   check a config; print FILE:LINE: message per problem
  edgeguard demo [-listen ADDR]     the embedded default in front of a built-in demo upstream
  edgeguard rules test [-config FILE] DIR...
                                    run rule packs' own tests through the WAF
  edgeguard explain -config FILE -request FILE.http [-client IP]
                                    print each stage's verdict for one raw HTTP request
  edgeguard tune -audit FILE -out DIR [-config FILE]
                                    propose an exclusion pack from the WAF's audit events
  edgeguard version                 print the version
`

// errUsage marks a command line that could not be understood (exit 2).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stderr)
	case "validate":
		err = cmdValidate(args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "rules":
		err = cmdRules(args[1:], stdout, stderr)
	case "explain":
		err = cmdExplain(args[1:], stdout, stderr)
	case "tune":
		err = cmdTune(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "edgeguard", version())
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "edgeguard: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintln(stderr, "edgeguard:", err)
		return 1
	}
}

// errReported means the problems were already printed.
var errReported = errors.New("problems reported")

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
