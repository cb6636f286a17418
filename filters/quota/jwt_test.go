package quota

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// issuer signs test tokens with one ECDSA P-256 key.
type issuer struct {
	t   testing.TB
	key *ecdsa.PrivateKey
	kid string
}

func newIssuer(t testing.TB, kid string) *issuer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{t: t, key: k, kid: kid}
}

// token signs claims with ES256 and the issuer's kid.
func (is *issuer) token(claims map[string]any) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if is.kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), is.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: is.key}, opts)
	if err != nil {
		is.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		is.t.Fatal(err)
	}
	return tok
}

// pemFile writes the issuer's public key as PEM.
func (is *issuer) pemFile(dir string) string {
	der, err := x509.MarshalPKIXPublicKey(&is.key.PublicKey)
	if err != nil {
		is.t.Fatal(err)
	}
	path := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		is.t.Fatal(err)
	}
	return path
}

// jwksFile writes a JWKS holding the public keys of issuers.
func jwksFile(t testing.TB, dir string, issuers ...*issuer) string {
	var set jose.JSONWebKeySet
	for _, is := range issuers {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &is.key.PublicKey, KeyID: is.kid, Algorithm: "ES256", Use: "sig"})
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func at(d time.Duration) int64 { return t0.Add(d).Unix() }

// TestJWTIdentity pins whose identity a request gets from its token: the
// claim only when the token verifies at the request's time, the address
// in every other case.
func TestJWTIdentity(t *testing.T) {
	dir := t.TempDir()
	good, other, nokid := newIssuer(t, "k1"), newIssuer(t, "k2"), newIssuer(t, "")
	jwks := jwksFile(t, dir, good)
	valid := map[string]any{"sub": "alice", "exp": at(time.Hour)}
	tests := []struct {
		name   string
		jwt    JWT
		header string // Authorization value
		claim  string // "" for the address
	}{
		{"valid", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + good.token(valid), "alice"},
		{"scheme in any case", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "bearer " + good.token(valid), "alice"},
		{"pem key", JWT{KeyFile: nokid.pemFile(dir), Algorithms: []string{"ES256"}}, "Bearer " + nokid.token(valid), "alice"},
		{"expired", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + good.token(map[string]any{"sub": "alice", "exp": at(-time.Second)}), ""},
		{"expired within leeway", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}, Leeway: filters.Duration(time.Minute)}, "Bearer " + good.token(map[string]any{"sub": "alice", "exp": at(-time.Second)}), "alice"},
		{"not yet valid", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + good.token(map[string]any{"sub": "alice", "exp": at(time.Hour), "nbf": at(time.Minute)}), ""},
		{"no exp", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + good.token(map[string]any{"sub": "alice"}), ""},
		{"forged: another key, same kid", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + (&issuer{t: t, key: other.key, kid: "k1"}).token(valid), ""},
		{"unknown kid", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + other.token(valid), ""},
		{"algorithm not allowed", JWT{JWKSFile: jwks, Algorithms: []string{"RS256"}}, "Bearer " + good.token(valid), ""},
		{"alg none", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + unsigned(valid), ""},
		{"tampered payload", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + tamper(good.token(valid)), ""},
		{"claim missing", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + good.token(map[string]any{"exp": at(time.Hour)}), ""},
		{"claim not a string", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + good.token(map[string]any{"sub": 7, "exp": at(time.Hour)}), ""},
		{"no bearer scheme", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, good.token(valid), ""},
		{"garbage", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer a.b.c", ""},
		{"too long", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, "Bearer " + good.token(map[string]any{"sub": "alice", "exp": at(time.Hour), "pad": strings.Repeat("x", maxTokenLen)}), ""},
		{"issuer matches", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}, Issuer: "idp"}, "Bearer " + good.token(map[string]any{"sub": "alice", "exp": at(time.Hour), "iss": "idp"}), "alice"},
		{"issuer differs", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}, Issuer: "idp"}, "Bearer " + good.token(map[string]any{"sub": "alice", "exp": at(time.Hour), "iss": "evil"}), ""},
		{"audience differs", JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}, Audience: "api"}, "Bearer " + good.token(map[string]any{"sub": "alice", "exp": at(time.Hour), "aud": "web"}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := tt.jwt
			f := mustNew(t, Config{Key: []string{"jwt:sub", "ip"}, JWT: &j, Policies: []Policy{{Name: "p", Rate: rate("1/m")}}}, filters.Env{})
			r := newReq("GET", "/", t0, "Authorization", tt.header)
			id, byIP, ok := f.clientID(r)
			want := hashID("jwt:sub", tt.claim)
			if tt.claim == "" {
				want = hashID("ip", string(r.Key[:]))
			}
			if !ok || id != want || byIP != (tt.claim == "") {
				t.Fatalf("identity %x (by ip %v, ok %v), want the %s", id, byIP, ok, map[bool]string{true: "address", false: "claim " + tt.claim}[tt.claim == ""])
			}
		})
	}
}

// unsigned is a token with "alg":"none".
func unsigned(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// tamper changes the token's sub to mallory, keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":` + strconv.FormatInt(at(time.Hour), 10) + `}`))
	return parts[0] + "." + payload + "." + parts[2]
}

// TestJWTBuckets is #11.6 end to end in the stage: a valid token gets a
// bucket per claim, shared by every address that sends it; an expired or
// forged one is limited as the address that sent it.
func TestJWTBuckets(t *testing.T) {
	dir := t.TempDir()
	good, forger := newIssuer(t, "k1"), newIssuer(t, "k1")
	f := mustNew(t, Config{
		Key:      []string{"jwt:sub", "ip"},
		JWT:      &JWT{JWKSFile: jwksFile(t, dir, good), Algorithms: []string{"ES256"}},
		Policies: []Policy{{Name: "p", Rate: rate("1/m"), Burst: 2}},
	}, filters.Env{})
	from := func(ip, token string) filters.Verdict {
		r := newReq("GET", "/", t0, "Authorization", "Bearer "+token)
		r.Client = netip.MustParseAddr(ip)
		r.Key = filters.KeyOf(r.Client, 64)
		return f.Check(r)
	}
	alice := good.token(map[string]any{"sub": "alice", "exp": at(time.Hour)})
	if v := from("192.0.2.1", alice); v.Deny {
		t.Fatalf("alice from .1: %+v", v)
	}
	if v := from("192.0.2.2", alice); v.Deny {
		t.Fatalf("alice from .2: %+v", v)
	}
	if v := from("192.0.2.3", alice); !v.Deny || !v.NotClient {
		t.Fatalf("alice's third request, from .3: %+v, want her bucket spent and a NotClient deny", v)
	}
	// Expired and forged tokens from .9 all land in .9's bucket.
	expired := good.token(map[string]any{"sub": "bob", "exp": at(-time.Minute)})
	forged := forger.token(map[string]any{"sub": "carol", "exp": at(time.Hour)})
	for i, tok := range []string{expired, forged} {
		if v := from("192.0.2.9", tok); v.Deny {
			t.Fatalf("bad token %d from .9: %+v", i, v)
		}
	}
	if v := from("192.0.2.9", forged); !v.Deny || v.NotClient {
		t.Fatalf("third bad token from .9: %+v, want .9's bucket spent, a deny on the address", v)
	}
}

func TestJWTConfig(t *testing.T) {
	good := Policy{Name: "p", Rate: rate("1/m")}
	tests := []struct {
		name   string
		cfg    Config
		fields []string
	}{
		{"jwt source without block", Config{Key: []string{"jwt:sub"}, Policies: []Policy{good}}, []string{"key[0]"}},
		{"no key file", Config{Key: []string{"jwt:sub"}, JWT: &JWT{Algorithms: []string{"ES256"}}, Policies: []Policy{good}}, []string{"jwt.key_file"}},
		{"both key files", Config{JWT: &JWT{KeyFile: "a", JWKSFile: "b", Algorithms: []string{"ES256"}}, Policies: []Policy{good}}, []string{"jwt.key_file"}},
		{"no algorithms", Config{JWT: &JWT{KeyFile: "a"}, Policies: []Policy{good}}, []string{"jwt.algorithms"}},
		{"alg none", Config{JWT: &JWT{KeyFile: "a", Algorithms: []string{"ES256", "none"}}, Policies: []Policy{good}}, []string{"jwt.algorithms[1]"}},
		{"bad header, negative leeway", Config{JWT: &JWT{KeyFile: "a", Algorithms: []string{"ES256"}, Header: "a b", Leeway: -1}, Policies: []Policy{good}}, []string{"jwt.header", "jwt.leeway"}},
		{"claim with space", Config{Key: []string{"jwt:a b"}, JWT: &JWT{KeyFile: "a", Algorithms: []string{"ES256"}}, Policies: []Policy{good}}, []string{"key[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, fe := range filters.FieldErrors(tt.cfg.Validate()) {
				got = append(got, fe.Field)
			}
			if strings.Join(got, " ") != strings.Join(tt.fields, " ") {
				t.Errorf("fields %v, want %v", got, tt.fields)
			}
		})
	}
	// Key files that are not what they claim fail the build.
	dir := t.TempDir()
	priv := newIssuer(t, "k")
	der, _ := x509.MarshalECPrivateKey(priv.key)
	privPEM := filepath.Join(dir, "priv.pem")
	_ = os.WriteFile(privPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	notJSON := filepath.Join(dir, "jwks.json")
	_ = os.WriteFile(notJSON, []byte("{"), 0o600)
	for _, j := range []JWT{{KeyFile: privPEM}, {JWKSFile: notJSON}, {KeyFile: "missing.pem"}} {
		j.Algorithms = []string{"ES256"}
		_, err := New(Config{Key: []string{"jwt:sub"}, JWT: &j, Policies: []Policy{good}}, filters.Env{Dir: dir})
		if !errors.Is(err, ErrJWTKey) {
			t.Errorf("%+v: %v, want ErrJWTKey", j, err)
		}
	}
}

// TestJWTCacheRechecksTime: a token whose signature was verified once is
// remembered, but its exp and nbf are checked at every request's time: it
// stops identifying the client when it expires, and one seen before its
// nbf starts to once it is valid.
func TestJWTCacheRechecksTime(t *testing.T) {
	dir := t.TempDir()
	is := newIssuer(t, "k1")
	f := mustNew(t, Config{
		Key:      []string{"jwt:sub", "ip"},
		JWT:      &JWT{JWKSFile: jwksFile(t, dir, is), Algorithms: []string{"ES256"}},
		Policies: []Policy{{Name: "p", Rate: rate("1/m")}},
	}, filters.Env{})
	tok := "Bearer " + is.token(map[string]any{"sub": "alice", "nbf": at(time.Minute), "exp": at(time.Hour)})
	for _, st := range []struct {
		at    time.Duration
		byJWT bool
	}{
		{0, false},              // before nbf: verified, remembered, not trusted yet
		{2 * time.Minute, true}, // valid
		{30 * time.Minute, true},
		{time.Hour + time.Second, false}, // expired, though remembered
	} {
		_, byIP, ok := f.clientID(newReq("GET", "/", t0.Add(st.at), "Authorization", tok))
		if !ok || byIP == st.byJWT {
			t.Errorf("at +%v: identified by the token = %v, want %v", st.at, !byIP, st.byJWT)
		}
	}
	if n := f.jwt.signed.Len(); n != 1 {
		t.Errorf("%d tokens remembered, want 1", n)
	}
}
