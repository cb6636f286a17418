package quota

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/net/http/httpguts"
)

// JWT says how the bearer tokens behind jwt:CLAIM key sources are verified.
// A token is trusted only when one of the keys signed it with an allowed
// algorithm, its exp and nbf hold at the request's time, and issuer and
// audience match when they are set; otherwise the request is identified by
// the next key source.
type JWT struct {
	// Header is the request header holding the token. Default
	// Authorization, where the token follows "Bearer ".
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	// KeyFile names a PEM file holding one public key (RSA, ECDSA or
	// Ed25519; "PUBLIC KEY" or a certificate). Relative to the config
	// file; read again on every reload. Exactly one of KeyFile and
	// JWKSFile is required.
	KeyFile string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// JWKSFile names a JSON Web Key Set file (as an identity provider
	// publishes it); a token names its key with the "kid" header. Relative
	// to the config file; read again on every reload.
	JWKSFile string `yaml:"jwks_file,omitempty" json:"jwks_file,omitempty"`
	// Algorithms are the signature algorithms accepted, e.g. [RS256] or
	// [ES256, EdDSA]. Required: a token's own "alg" header is never
	// trusted to choose. HS256/384/512 work only with a symmetric key of a
	// JWKS file.
	Algorithms []string `yaml:"algorithms" json:"algorithms"`
	// Issuer, when set, must equal the token's "iss".
	Issuer string `yaml:"issuer,omitempty" json:"issuer,omitempty"`
	// Audience, when set, must be one of the token's "aud".
	Audience string `yaml:"audience,omitempty" json:"audience,omitempty"`
	// Leeway is the clock skew allowed on exp and nbf. Default 0.
	Leeway filters.Duration `yaml:"leeway,omitempty" json:"leeway,omitempty"`
}

// jwtAlgorithms are the algorithms JWT.Algorithms may name.
var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.HS256, jose.HS384, jose.HS512,
}

// maxTokenLen bounds the tokens parsed: a longer one is not trusted (real
// tokens are a few hundred bytes; parsing megabytes per request is work an
// attacker chooses).
const maxTokenLen = 8 << 10

func (j *JWT) validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, filters.FieldErrorf(field, format, args...))
	}
	if (j.KeyFile == "") == (j.JWKSFile == "") {
		add("key_file", "exactly one of key_file and jwks_file is needed")
	}
	if len(j.Algorithms) == 0 {
		add("algorithms", "at least one is needed, e.g. [RS256]")
	}
	for i, a := range j.Algorithms {
		if !slices.Contains(jwtAlgorithms, jose.SignatureAlgorithm(a)) {
			add(fmt.Sprintf("algorithms[%d]", i), "%q: want one of %v", a, jwtAlgorithms)
		}
	}
	if j.Header != "" && !httpguts.ValidHeaderFieldName(j.Header) {
		add("header", "%q: want a header name", j.Header)
	}
	if j.Leeway < 0 {
		add("leeway", "must not be negative")
	}
	return errors.Join(errs...)
}

// jwtVerifier checks tokens against one JWT block.
type jwtVerifier struct {
	header   string
	bearer   bool // strip a "Bearer " scheme
	key      any  // a public key or a *jose.JSONWebKeySet
	algs     []jose.SignatureAlgorithm
	expected jwt.Expected
	leeway   time.Duration
	// signed remembers tokens whose signature verified, by their SHA-256:
	// a client sends the same token with every request, and a signature
	// check costs far more than the quota decision (see
	// BenchmarkCheckKeySource). The time claims are checked on every use.
	signed *lru.Cache[[sha256.Size]byte, *signedToken]
}

// signedToken is what a verified token says.
type signedToken struct {
	std    jwt.Claims
	claims map[string]any
}

// jwtCacheSize bounds the verified tokens remembered (about 1 KiB each).
const jwtCacheSize = 10_000

func newJWTVerifier(j *JWT, dir string) (*jwtVerifier, error) {
	signed, err := lru.New[[sha256.Size]byte, *signedToken](jwtCacheSize)
	if err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	v := &jwtVerifier{header: "Authorization", expected: jwt.Expected{Issuer: j.Issuer}, leeway: j.Leeway.D(), signed: signed}
	if j.Header != "" {
		v.header = http.CanonicalHeaderKey(j.Header)
	}
	v.bearer = v.header == "Authorization"
	if j.Audience != "" {
		v.expected.AnyAudience = jwt.Audience{j.Audience}
	}
	for _, a := range j.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	if j.KeyFile != "" {
		if v.key, err = loadPublicKey(resolve(dir, j.KeyFile)); err != nil {
			return nil, &filters.FieldError{Field: "key_file", Err: err}
		}
	} else if v.key, err = loadJWKS(resolve(dir, j.JWKSFile)); err != nil {
		return nil, &filters.FieldError{Field: "jwks_file", Err: err}
	}
	return v, nil
}

func resolve(dir, file string) string {
	if filepath.IsAbs(file) || dir == "" {
		return file
	}
	return filepath.Join(dir, file)
}

// ErrJWTKey is matched (errors.Is) by every error reading a JWT key file.
// Its text is not repeated in theirs: each names its file, and is reported
// under the key that names it (quota.jwt.key_file...).
var ErrJWTKey = errors.New("quota: bad jwt key file")

// jwtKeyError is a problem with a JWT key file: an ErrJWTKey.
type jwtKeyError struct{ error }

func (e jwtKeyError) Unwrap() error        { return e.error }
func (e jwtKeyError) Is(target error) bool { return target == ErrJWTKey }

func jwtKeyErrorf(format string, args ...any) error {
	return jwtKeyError{fmt.Errorf(format, args...)}
}

func loadPublicKey(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, jwtKeyErrorf("%w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, jwtKeyErrorf("%s: no PEM block", path)
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, jwtKeyErrorf("%s: %w", path, err)
		}
		return k, nil
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, jwtKeyErrorf("%s: %w", path, err)
		}
		return c.PublicKey, nil
	}
	return nil, jwtKeyErrorf("%s: PEM block %q: want PUBLIC KEY or CERTIFICATE (never a private key)", path, block.Type)
}

func loadJWKS(path string) (*jose.JSONWebKeySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, jwtKeyErrorf("%w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, jwtKeyErrorf("%s: %w", path, err)
	}
	if len(set.Keys) == 0 {
		return nil, jwtKeyErrorf("%s: no keys", path)
	}
	for i, k := range set.Keys {
		if !k.Valid() {
			return nil, jwtKeyErrorf("%s: key %d (kid %q) is not valid", path, i, k.KeyID)
		}
		if !k.IsPublic() && k.Algorithm != "" && !strings.HasPrefix(k.Algorithm, "HS") {
			return nil, jwtKeyErrorf("%s: key %d (kid %q) is a private key: publish only public keys here", path, i, k.KeyID)
		}
	}
	return &set, nil
}

// claim returns the string value of claim in r's token when the token
// verifies at now; ok is false for a missing, malformed, forged, expired or
// not yet valid token, one without exp, and for a claim that is absent, empty or not a
// string.
func (v *jwtVerifier) claim(r *http.Request, claim string, now time.Time) (string, bool) {
	raw := r.Header.Get(v.header)
	if v.bearer {
		scheme, token, ok := strings.Cut(raw, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		raw = strings.TrimSpace(token)
	}
	if raw == "" || len(raw) > maxTokenLen {
		return "", false
	}
	tok, ok := v.verified(raw)
	// A token without exp would be good forever: not trusted.
	if !ok || tok.std.Expiry == nil || tok.std.ValidateWithLeeway(v.expected.WithTime(now), v.leeway) != nil {
		return "", false
	}
	s, _ := tok.claims[claim].(string)
	return s, s != ""
}

// verified returns what raw says when one of the keys signed it with an
// allowed algorithm (and its issuer and audience match): from the cache,
// or by checking the signature and remembering the token.
func (v *jwtVerifier) verified(raw string) (*signedToken, bool) {
	sum := sha256.Sum256([]byte(raw))
	if t, ok := v.signed.Get(sum); ok {
		return t, true
	}
	tok, err := jwt.ParseSigned(raw, v.algs)
	if err != nil {
		return nil, false
	}
	t := &signedToken{}
	if err := tok.Claims(v.key, &t.std, &t.claims); err != nil {
		return nil, false
	}
	// Issuer and audience never change: checked once, with the time
	// checks left to each use.
	static := v.expected
	static.Time = time.Unix(0, 0)
	if err := t.std.ValidateWithLeeway(static, 0); err != nil && !errors.Is(err, jwt.ErrExpired) && !errors.Is(err, jwt.ErrNotValidYet) && !errors.Is(err, jwt.ErrIssuedInTheFuture) {
		return nil, false
	}
	v.signed.Add(sum, t)
	return t, true
}
