package main

import (
	"fmt"
	"io"

	"github.com/edgeguard/edgeguard"
)

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("version", "version", 0, stdout, stderr)
	if _, err := c.parse(args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, edgeguard.ReadBuildInfo())
	return nil
}
