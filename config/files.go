package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/filters/reputation"
	"github.com/edgeguard/edgeguard/filters/waf"
)

// refusedFiles checks the files named by the stage blocks of the chain
// that Parse refused, in dir (the config file's directory) when relative.
// A refused block is not built from a draft (Refused), so without this
// pass a list that is missing beside a negative threshold in the same
// block would show only once the threshold is fixed: one run must report
// both. It reads what building reads first, with the same parsers, and
// says what building would say, each problem a *filters.FieldError at the
// key that names the file: reputation lists (files, not URLs), waf packs
// (layout and pack.yaml; their rules compile only when the block builds),
// the quota keys file (parsed) and JWT key files (that they can be read).
func (c *Config) refusedFiles(dir string) error {
	refused := func(stage string) bool { return slices.Contains(c.Stages, stage) && c.Refused(stage) }
	var errs []error
	if refused("reputation") {
		for i, l := range c.Reputation.Lists {
			if l.File != "" {
				errs = append(errs, filters.PrefixFields(fmt.Sprintf("reputation.lists[%d]", i), readList(resolve(dir, l.File))))
			}
		}
	}
	if refused(waf.Name) {
		errs = append(errs, packFiles("waf", c.WAF.Packs, nil, dir))
	}
	// A route's WAF block is not built either when the top-level one is
	// refused; its packs beyond the top level's are checked here too.
	for _, route := range slices.Sorted(maps.Keys(c.RouteStages)) {
		rs := c.RouteStages[route]
		field := "route_stages." + route + "." + waf.Name
		if rs.WAF != nil && slices.Contains(c.Stages, waf.Name) && (c.Refused(waf.Name) || c.Refused(field)) {
			errs = append(errs, packFiles(field, rs.WAF.Packs, c.WAF.Packs, dir))
		}
	}
	if refused(quota.Name) {
		if c.Quota.KeysFile != "" {
			errs = append(errs, filters.PrefixFields("quota.keys_file", readKeys(resolve(dir, c.Quota.KeysFile))))
		}
		if jwt := c.Quota.JWT; jwt != nil {
			for _, kf := range []struct{ field, file string }{{"quota.jwt.key_file", jwt.KeyFile}, {"quota.jwt.jwks_file", jwt.JWKSFile}} {
				if kf.file != "" {
					errs = append(errs, filters.PrefixFields(kf.field, readable(resolve(dir, kf.file))))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// packFiles loads each pack of packs that is not in skip (checked already,
// under the top-level block), each problem under field.packs[N].
func packFiles(field string, packs, skip []string, dir string) error {
	var errs []error
	for i, p := range packs {
		if slices.Contains(skip, p) {
			continue
		}
		if _, err := waf.LoadPack(dir, p); err != nil {
			errs = append(errs, filters.PrefixFields(fmt.Sprintf("%s.packs[%d]", field, i), err))
		}
	}
	return errors.Join(errs...)
}

// readList parses the list file at path as the reputation stage does.
func readList(path string) error {
	return parseFile(path, func(r io.Reader) error { _, err := reputation.ParseList(r, path); return err })
}

// readKeys parses the keys file at path as the quota stage does.
func readKeys(path string) error {
	return parseFile(path, func(r io.Reader) error { _, err := quota.ParseKeys(r, path); return err })
}

// parseFile opens the file at path and hands it to parse.
func parseFile(path string, parse func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return pathError(path, err)
	}
	defer f.Close()
	return parse(f)
}

// readable reports whether the file at path can be read.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return pathError(path, err)
	}
	return f.Close()
}

// pathError is "PATH: reason", as the stages say it: the *fs.PathError's
// own text would name the system call and repeat the path.
func pathError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", path, err)
}

func resolve(dir, file string) string {
	if filepath.IsAbs(file) || dir == "" {
		return file
	}
	return filepath.Join(dir, file)
}
