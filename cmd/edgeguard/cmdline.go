package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdLine is one command's command line: its flags and how many
// positional arguments it takes. Flags may come before or after the
// positional arguments; anything beyond them is an error, never ignored.
type cmdLine struct {
	fs       *flag.FlagSet
	synopsis string // after "edgeguard ", e.g. "run [-config] FILE"
	maxArgs  int    // positional arguments allowed; -1 for any number
	stdout   io.Writer
	stderr   io.Writer
}

func newCmdLine(name, synopsis string, maxArgs int, stdout, stderr io.Writer) *cmdLine {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &cmdLine{fs: fs, synopsis: synopsis, maxArgs: maxArgs, stdout: stdout, stderr: stderr}
	// The flag package prints usage on every error; we print it ourselves,
	// to stdout for -h and to stderr after a mistake.
	fs.Usage = func() {}
	return c
}

// help writes the synopsis and the flags to w.
func (c *cmdLine) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: edgeguard %s\n", c.synopsis)
	var flags strings.Builder
	c.fs.SetOutput(&flags)
	c.fs.PrintDefaults()
	c.fs.SetOutput(c.stderr)
	if flags.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", flags.String())
	}
}

// parse reads args and returns the positional arguments. -h prints the
// help to stdout and returns errHelp; a bad flag or a surplus argument
// prints the reason and the synopsis to stderr and returns errUsage.
func (c *cmdLine) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help(c.stdout)
				return nil, errHelp
			}
			c.help(c.stderr)
			return nil, errUsage
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if c.maxArgs >= 0 && len(pos) > c.maxArgs {
		fmt.Fprintf(c.stderr, "edgeguard %s: unexpected argument %q\n", c.fs.Name(), pos[c.maxArgs])
		c.help(c.stderr)
		return nil, errUsage
	}
	return pos, nil
}

// configFlag adds -config to c; configPath reads it back.
func (c *cmdLine) configFlag() *string {
	return c.fs.String("config", "", "config file (YAML); may also be given as the first argument")
}

// configFile parses args for a command that takes its config file as
// -config FILE or as its one positional argument (add the command's other
// flags to c.fs first), and returns the file.
func (c *cmdLine) configFile(args []string) (string, error) {
	flagPath := c.configFlag()
	pos, err := c.parse(args)
	if err != nil {
		return "", err
	}
	return c.configPath(*flagPath, pos)
}

// configPath is the config file named by -config or by the one positional
// argument, which must not both be given.
func (c *cmdLine) configPath(flagValue string, pos []string) (string, error) {
	switch {
	case flagValue != "" && len(pos) > 0:
		fmt.Fprintf(c.stderr, "edgeguard %s: the config file is given twice (-config %s and %s)\n", c.fs.Name(), flagValue, pos[0])
	case flagValue != "":
		return flagValue, nil
	case len(pos) > 0:
		return pos[0], nil
	default:
		fmt.Fprintf(c.stderr, "edgeguard %s: a config FILE is required\n", c.fs.Name())
	}
	c.help(c.stderr)
	return "", errUsage
}
