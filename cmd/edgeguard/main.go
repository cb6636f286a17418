// Command edgeguard is the edge filter as a reverse-proxy binary: it reads a
// YAML config, filters every request through the chain it describes and
// forwards what passes. See `edgeguard help`.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

const usage = `edgeguard — a WAF-style edge filter

Usage:
  edgeguard run FILE                serve (SIGHUP reloads, SIGTERM drains)
  edgeguard validate FILE           check a config; print FILE:LINE: message per problem
  edgeguard demo [-listen ADDR]     the embedded default in front of a built-in demo upstream
  edgeguard rules test [-config FILE] DIR...
                                    run rule packs' own tests through the WAF
  edgeguard explain -config FILE -request FILE.http [-client IP]
                                    print each stage's verdict for one raw HTTP request
  edgeguard tune -audit FILE -out DIR [-config FILE]
                                    propose an exclusion pack from the WAF's audit events
  edgeguard config schema           print the JSON Schema of the config file
  edgeguard health [URL]            exit 0 if the admin /healthz answers 200 (container checks)
  edgeguard version                 print the version, commit, Go, Coraza and CRS versions

FILE may also be given as -config FILE. Every command takes -h.
`

var (
	// errUsage marks a command line that could not be understood (exit 2).
	errUsage = errors.New("usage")
	// errHelp marks a command line that asked for help, which was printed
	// (exit 0).
	errHelp = errors.New("help")
	// errReported means the problems were already printed (exit 1).
	errReported = errors.New("problems reported")
)

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
		err = cmdRun(args[1:], stdout, stderr)
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
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "health":
		err = cmdHealth(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		err = cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "edgeguard: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintln(stderr, "edgeguard:", err)
		return 1
	}
}
