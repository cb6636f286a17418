package quota

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrKeysFile is matched (errors.Is) by every error about a keys file. Its
// text is not repeated in theirs: each names its file (and line), and is
// reported under quota.keys_file, which says the rest.
var ErrKeysFile = errors.New("quota: bad keys file")

// keysFileError is a problem with a keys file: an ErrKeysFile.
type keysFileError struct{ error }

func (e keysFileError) Unwrap() error        { return e.error }
func (e keysFileError) Is(target error) bool { return target == ErrKeysFile }

func keysFileErrorf(format string, args ...any) error {
	return keysFileError{fmt.Errorf(format, args...)}
}

// maxKeysFileErrors bounds how many malformed lines one file reports: the
// wrong file named must not flood the log.
const maxKeysFileErrors = 20

// KeyHash is the SHA-256 of an API key: what a keys file lists, so that the
// file never holds a usable key.
type KeyHash [sha256.Size]byte

// HashKey returns the hash of key as a keys file lists it.
func HashKey(key string) KeyHash { return sha256.Sum256([]byte(key)) }

// ParseKeys reads a keys file: one SHA-256 (64 hex digits, either case) a
// line, optionally followed by white space and a label that is ignored (so
// the output of `printf %s KEY | sha256sum` is a valid line); "#" to the
// end of a line is a comment and blank lines are skipped. Errors name the
// line as name:LINE: message; any error means the file must not be used.
func ParseKeys(r io.Reader, name string) (map[KeyHash]struct{}, error) {
	out := map[KeyHash]struct{}{}
	var errs []error
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		field, _, _ := strings.Cut(strings.ReplaceAll(text, "\t", " "), " ")
		h, err := parseKeyHash(field)
		if err != nil {
			errs = append(errs, keysFileErrorf("%s:%d: %w", name, line, err))
		} else {
			out[h] = struct{}{}
		}
		if len(errs) == maxKeysFileErrors {
			errs = append(errs, keysFileErrorf("%s: giving up after %d malformed lines", name, maxKeysFileErrors))
			return nil, errors.Join(errs...)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, keysFileErrorf("%s:%d: %w", name, line+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parseKeyHash(s string) (KeyHash, error) {
	var h KeyHash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%q is not a SHA-256 in hex: want %d hex digits, got %d characters (list the hash of each key, never the key)", clip(s), 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%q is not a SHA-256 in hex: %w", clip(s), err)
	}
	return h, nil
}

// clip shortens what a message quotes from a file: a line that is a whole
// key or a certificate must not be copied into logs.
func clip(s string) string {
	if len(s) > 16 {
		return s[:8] + "…"
	}
	return s
}

// loadKeys reads the keys file at file, relative to dir.
func loadKeys(dir, file string) (map[KeyHash]struct{}, error) {
	path := file
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		// The path error's own text would name the path a second time.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, keysFileErrorf("%s: %w", path, err)
	}
	defer f.Close()
	return ParseKeys(f, path)
}
