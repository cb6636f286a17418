package reputation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Defaults and bounds of lists followed by URL.
const (
	// DefaultListEvery is how often a list URL is fetched when the list
	// does not say.
	DefaultListEvery = time.Hour
	// DefaultCacheDir is where downloaded lists are kept, relative to the
	// config file's directory; the config loader puts it under
	// $STATE_DIRECTORY instead when that is set.
	DefaultCacheDir = "lists-cache"
	// maxListBytes bounds a download: the largest published lists
	// (FireHOL level 4) are a few MB.
	maxListBytes = 64 << 20
	// fetchTimeout bounds one fetch, connection to last byte.
	fetchTimeout = 30 * time.Second
	// failedRetry is the longest wait after a failed fetch before the
	// next try, when every is longer.
	failedRetry = 5 * time.Minute
)

// remote is the state of a list followed by URL: where its last good copy
// is kept on disk, the validators the server gave with it, and when it is
// next due. It is touched by New and then only by the maintain goroutine.
type remote struct {
	url    string
	every  time.Duration
	cache  string // the last good body; cache+".meta" holds remoteMeta
	meta   remoteMeta
	next   time.Time
	client *http.Client
}

// remoteMeta is kept beside the cached body, so that a restart neither
// fetches early nor forgets the validators.
type remoteMeta struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Fetched      time.Time `json:"fetched"` // last 200 or 304
}

// cacheName is the file a URL's copy is kept in: readable, and unique by a
// hash of the whole URL.
func cacheName(u string) string {
	sum := sha256.Sum256([]byte(u))
	host := "list"
	if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
		host = p.Hostname()
	}
	return host + "-" + hex.EncodeToString(sum[:6]) + ".txt"
}

// readMeta loads the validators and fetch time kept beside the cache; a
// missing or unreadable file (or one for another URL) means none.
func (r *remote) readMeta() {
	b, err := os.ReadFile(r.cache + ".meta")
	if err != nil {
		return
	}
	var m remoteMeta
	if json.Unmarshal(b, &m) == nil && m.URL == r.url {
		r.meta = m
	}
}

// fetched says what a fetch brought.
type fetched int

const (
	notModified fetched = iota // 304: the copy on disk is current
	newBody                    // 200 with a list that parsed, now on disk
)

// fetch asks for the list with the validators of the last good copy. A
// new body is parsed before anything is kept: a failed request, an
// unexpected status, an oversized, malformed or empty list is an error
// and the last good copy stays, on disk and in force.
func (r *remote) fetch(ctx context.Context, now time.Time) (fetched, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return 0, listErrorf("%s: %v", r.url, err)
	}
	if r.meta.ETag != "" {
		req.Header.Set("If-None-Match", r.meta.ETag)
	}
	if r.meta.LastModified != "" {
		req.Header.Set("If-Modified-Since", r.meta.LastModified)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, listErrorf("fetching %s: %v", r.url, cause(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		r.meta.Fetched = now
		r.writeMeta()
		return notModified, nil
	case http.StatusOK:
	default:
		return 0, listErrorf("fetching %s: %s", r.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListBytes+1))
	if err != nil {
		return 0, listErrorf("fetching %s: reading the body: %v", r.url, err)
	}
	if len(body) > maxListBytes {
		return 0, listErrorf("fetching %s: larger than %d MiB", r.url, maxListBytes>>20)
	}
	entries, err := ParseList(bytes.NewReader(body), r.url)
	if err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		return 0, listErrorf("%s: the download holds no address (an empty list is more likely a publishing fault than a clean internet)", r.url)
	}
	if err := writeAtomic(r.cache, body); err != nil {
		return 0, listErrorf("keeping %s in %s: %v", r.url, r.cache, cause(err))
	}
	r.meta = remoteMeta{URL: r.url, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Fetched: now}
	r.writeMeta()
	return newBody, nil
}

// writeMeta keeps the validators; failing to is not worth failing a fetch
// over (the next start fetches once more).
func (r *remote) writeMeta() {
	b, _ := json.Marshal(r.meta)
	_ = writeAtomic(r.cache+".meta", b)
}

// writeAtomic replaces path with data so that a reader, or a crash, never
// sees half a file.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// schedule sets when the list is next due: every after a success, sooner
// after a failure.
func (r *remote) schedule(now time.Time, failed bool) {
	wait := r.every
	if failed {
		wait = min(r.every, failedRetry)
	}
	r.next = now.Add(wait)
}

// openRemote prepares lf, a list followed by URL, at New: the copy kept on
// disk is used when there is one that parses, and fetched again when it is
// due; without one the list is fetched now, and a failure fails New rather
// than start with the list empty.
func openRemote(ctx context.Context, lf *listFile, now time.Time) error {
	r := lf.remote
	r.readMeta()
	if _, err := lf.load(true); err == nil {
		r.next = r.meta.Fetched.Add(r.every)
		return nil
	}
	// No copy kept, or one that does not parse: fetch it now.
	r.meta = remoteMeta{}
	if _, err := r.fetch(ctx, now); err != nil {
		return fmt.Errorf("%w (and no copy is kept in %s)", err, r.cache)
	}
	if _, err := lf.load(true); err != nil {
		return err
	}
	r.schedule(now, false)
	return nil
}

// refreshRemote fetches the lists that are due at now and puts what
// changed in force. A failure is logged and counted, and the list keeps its
// last good copy until a later fetch succeeds.
func (f *Filter) refreshRemote(ctx context.Context, now time.Time) {
	for _, lf := range f.files {
		r := lf.remote
		if r == nil || now.Before(r.next) {
			continue
		}
		got, err := r.fetch(ctx, now)
		r.schedule(now, err != nil)
		if err != nil {
			f.stats.listErrors.Add(1)
			f.log.Error("list fetch failed, last good copy kept", "url", r.url, "fetched", r.meta.Fetched, "retry", r.next, "err", err)
			continue
		}
		if got == newBody {
			f.putInForce(lf)
		}
	}
}

// putInForce reads lf's copy on disk again and rebuilds the tables.
func (f *Filter) putInForce(lf *listFile) {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	if _, err := lf.load(true); err != nil {
		f.stats.listErrors.Add(1)
		f.log.Error("list refused, previous contents kept", "err", err)
		return
	}
	f.lists.Store(buildLists(f.files))
	f.log.Info("lists reloaded", "url", lf.remote.url, "entries", f.lists.Load().sizes)
}
