package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

const (
	// ocspTimeout bounds one OCSP request, connection to last byte: a
	// responder that hangs delays a load by this much, once.
	ocspTimeout = 10 * time.Second
	// ocspRetry is how long after a failed request the responder is asked
	// again, so a responder that is down is not asked on every poll.
	ocspRetry = time.Minute
	// maxOCSPBytes bounds a response; real ones are a few hundred bytes.
	maxOCSPBytes = 64 << 10
)

// errNoOCSP: the certificate names no OCSP responder, or its file holds no
// issuer certificate to ask about it with; nothing to staple.
var errNoOCSP = errors.New("no OCSP responder or no issuer in the file")

// staple is the OCSP state of one certificate file: when to ask the
// responder again, and when the staple in service stops being valid.
type staple struct {
	refresh, expires time.Time // zero refresh: never (no responder)
}

// fetchStaple asks the OCSP responder cert's leaf names about it and, when
// the answer is good, returns the response to staple and when to ask
// again: halfway through the response's validity, as certmagic does for
// managed certificates, so a responder outage has half the window to
// pass. The issuer is the file's second certificate; a file with only the
// leaf, or a leaf without a responder (Let's Encrypt dropped OCSP in 2025),
// gets errNoOCSP.
func fetchStaple(client *http.Client, cert *tls.Certificate, now time.Time) ([]byte, staple, error) {
	leaf := cert.Leaf
	if leaf == nil || len(leaf.OCSPServer) == 0 || len(cert.Certificate) < 2 {
		return nil, staple{}, errNoOCSP
	}
	issuer, err := x509.ParseCertificate(cert.Certificate[1])
	if err != nil {
		return nil, staple{}, fmt.Errorf("tls: parsing the issuer of %s for OCSP: %w", leaf.Subject, err)
	}
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, staple{}, fmt.Errorf("tls: OCSP request for serial %s: %w", leaf.SerialNumber, err)
	}
	url := leaf.OCSPServer[0]
	resp, err := client.Post(url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		return nil, staple{}, fmt.Errorf("tls: asking OCSP responder %s about serial %s: %w", url, leaf.SerialNumber, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPBytes))
	if err != nil {
		return nil, staple{}, fmt.Errorf("tls: reading OCSP responder %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, staple{}, fmt.Errorf("tls: OCSP responder %s answered %s about serial %s", url, resp.Status, leaf.SerialNumber)
	}
	// ParseResponseForCert checks the signature (by the issuer or a
	// responder it delegated to) and that the answer is about this serial.
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		return nil, staple{}, fmt.Errorf("tls: OCSP response of %s about serial %s: %w", url, leaf.SerialNumber, err)
	}
	if r.Status != ocsp.Good {
		return nil, staple{}, fmt.Errorf("tls: OCSP responder %s says serial %s is not good (status %d)", url, leaf.SerialNumber, r.Status)
	}
	if r.NextUpdate.IsZero() || !r.NextUpdate.After(now) || r.NextUpdate.After(leaf.NotAfter) {
		return nil, staple{}, fmt.Errorf("tls: OCSP response of %s about serial %s is valid until %s, outside now %s to the certificate's expiry %s",
			url, leaf.SerialNumber, r.NextUpdate, now, leaf.NotAfter)
	}
	return body, staple{refresh: r.ThisUpdate.Add(r.NextUpdate.Sub(r.ThisUpdate) / 2), expires: r.NextUpdate}, nil
}

// restaple staples each of certs whose staple is due (all of them when
// states is nil: a fresh load) and returns the new states, in certs'
// order; certs is changed in place, so it must not be in service yet. A
// failed request keeps a staple that is still valid, drops one that is not
// (an expired staple is worse than none), is logged, and is tried again
// after ocspRetry.
func (c *certFiles) restaple(certs []tls.Certificate, states []staple, now time.Time) []staple {
	next := make([]staple, len(certs))
	for i := range certs {
		if states != nil {
			next[i] = states[i]
			if next[i].refresh.IsZero() || now.Before(next[i].refresh) {
				continue
			}
		}
		body, st, err := fetchStaple(c.ocspClient, &certs[i], now)
		switch {
		case err == nil:
			certs[i].OCSPStaple, next[i] = body, st
		case errors.Is(err, errNoOCSP):
			next[i] = staple{}
		default:
			c.log.Warn("OCSP stapling failed; the certificate is served without a fresh staple", "error", err.Error())
			next[i].refresh = now.Add(ocspRetry)
			if !now.Before(next[i].expires) {
				certs[i].OCSPStaple = nil
			}
		}
	}
	return next
}

// staplesDue reports whether a staple of states is due at now.
func staplesDue(states []staple, now time.Time) bool {
	for _, s := range states {
		if !s.refresh.IsZero() && !now.Before(s.refresh) {
			return true
		}
	}
	return false
}
