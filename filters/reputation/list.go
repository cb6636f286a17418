package reputation

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gaissmai/bart"
)

// ErrList is matched (errors.Is) by every error about a list. Its text is
// not repeated in theirs: each names its list (and line), and is reported
// under the list's key, reputation.lists[N], which says the rest.
var ErrList = errors.New("reputation: bad list")

// listError is a problem with one list: an ErrList.
type listError struct{ error }

func (e listError) Unwrap() error        { return e.error }
func (e listError) Is(target error) bool { return target == ErrList }

func listErrorf(format string, args ...any) error {
	return listError{fmt.Errorf(format, args...)}
}

// cause strips the wrapper of an os or net/http error whose text repeats
// the file or URL (and names the system call) that the message names
// already: "lists/deny.txt: no such file or directory".
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// maxListErrors bounds how many malformed lines one file reports: a file
// that is wholly wrong (the wrong file named) must not flood the log.
const maxListErrors = 20

// ParseList reads a list: one address or prefix a line, first on the line.
// "#" or ";" starts a comment that runs to the end of the line (FireHOL
// headers, Spamhaus DROP's "1.10.16.0/20 ; SBL256894"), blank lines are
// skipped, and fields after the address, separated by blanks, are ignored
// (a tag, an SBL reference) unless one is itself an address or prefix: two
// addresses on a line are refused rather than one of them dropped. Errors
// name the line as name:LINE: message; any error means the list must not
// be used.
func ParseList(r io.Reader, name string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(stripComment(sc.Text()))
		if text == "" {
			continue
		}
		first, rest := text, ""
		if i := strings.IndexAny(text, " \t"); i >= 0 {
			first, rest = text[:i], text[i+1:]
		}
		if p, err := parsePrefix(first); err != nil {
			errs = append(errs, listErrorf("%s:%d: %q is not an IP address or CIDR prefix%s", name, line, first, detail(err)))
		} else if extra := addressField(rest); extra != "" {
			errs = append(errs, listErrorf("%s:%d: one address or prefix per line, found %q after it", name, line, extra))
		} else {
			out = append(out, p)
		}
		if len(errs) == maxListErrors {
			errs = append(errs, listErrorf("%s: giving up after %d malformed lines", name, maxListErrors))
			return nil, errors.Join(errs...)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, listErrorf("%s:%d: %v", name, line+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// stripComment cuts a line at its first "#" or ";".
func stripComment(line string) string {
	if i := strings.IndexAny(line, "#;"); i >= 0 {
		return line[:i]
	}
	return line
}

// addressField returns the first blank-separated field of rest that reads
// as an address or a prefix (even a malformed one, with host bits or a
// zone), or "".
func addressField(rest string) string {
	if rest == "" {
		return ""
	}
	for _, f := range strings.Fields(rest) {
		a, _, _ := strings.Cut(f, "/")
		a, _, _ = strings.Cut(a, "%")
		if _, err := netip.ParseAddr(a); err == nil {
			return f
		}
	}
	return ""
}

// detail turns the parts of a parsePrefix error worth repeating (a zone, host
// bits) into a suffix.
func detail(err error) string {
	msg := err.Error()
	for _, hint := range []string{"zones are not allowed", "bits are set past", "IPv4-mapped prefix"} {
		if i := strings.Index(msg, hint); i >= 0 {
			return ": " + msg[i:]
		}
	}
	return ""
}

// listFile is one configured file and what was last read from it.
type listFile struct {
	path    string // resolved path
	action  Action
	size    int64
	modTime time.Time
	entries []netip.Prefix // the last good contents
	loaded  bool
	lastErr string  // the last error reported, guarded by Filter.reloadMu
	remote  *remote // for a list followed by URL (path is its copy on disk); nil for a file
}

// name is how logs and metrics call the list: its URL or its path.
func (lf *listFile) name() string {
	if lf.remote != nil {
		return lf.remote.url
	}
	return lf.path
}

// lists is the immutable lookup state built from every list file. A reload
// builds a new one and swaps it in; readers never lock.
type lists struct {
	allow, deny *bart.Lite
	sizes       []int // entries per file, in config order
}

// load reads the file if it changed since the last read (or force is set).
// On an error the previous contents stay.
func (lf *listFile) load(force bool) (changed bool, err error) {
	st, err := os.Stat(lf.path)
	if err != nil {
		return false, listErrorf("%s: %v", lf.path, cause(err))
	}
	if !force && lf.loaded && st.Size() == lf.size && st.ModTime().Equal(lf.modTime) {
		return false, nil
	}
	f, err := os.Open(lf.path)
	if err != nil {
		return false, listErrorf("%s: %v", lf.path, cause(err))
	}
	defer f.Close()
	entries, err := ParseList(f, lf.path)
	// Remember the stat even on failure so a broken file is reported once,
	// not on every poll; fixing it changes size or mtime again.
	lf.size, lf.modTime = st.Size(), st.ModTime()
	if err != nil {
		return false, err
	}
	lf.entries, lf.loaded = entries, true
	return true, nil
}

func resolvePath(dir, file string) string {
	if filepath.IsAbs(file) || dir == "" {
		return file
	}
	return filepath.Join(dir, file)
}

// buildLists builds the lookup tables from the files' current contents.
func buildLists(files []*listFile) *lists {
	l := &lists{allow: new(bart.Lite), deny: new(bart.Lite), sizes: make([]int, len(files))}
	for i, f := range files {
		t := l.deny
		if f.action == ActionAllow {
			t = l.allow
		}
		for _, p := range f.entries {
			t.Insert(p)
		}
		l.sizes[i] = len(f.entries)
	}
	return l
}
