package main

import (
	"fmt"
	"io"

	"github.com/edgeguard/edgeguard/config"
)

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprintln(stdout, "Usage: edgeguard config schema")
		return errHelp
	}
	if len(args) == 0 || args[0] != "schema" {
		fmt.Fprintln(stderr, "usage: edgeguard config schema")
		return errUsage
	}
	c := newCmdLine("config schema", "config schema", 0, stdout, stderr)
	if _, err := c.parse(args[1:]); err != nil {
		return err
	}
	_, err := stdout.Write(config.Schema())
	return err
}
