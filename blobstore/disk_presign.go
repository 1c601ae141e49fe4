package blobstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Query parameters of the embedded store's presigned URLs.
const (
	paramOp       = "op"
	paramExpires  = "exp"
	paramMax      = "max"
	paramType     = "ct"
	paramFileName = "fn"
	paramSig      = "sig"

	opPut = "put"
	opGet = "get"
)

// PresignPut returns a signed PUT URL that Handler accepts until ttl has
// passed, for at most maxSize bytes, storing contentType.
func (d *Disk) PresignPut(ctx context.Context, key, contentType string, maxSize int64, ttl time.Duration) (Presigned, error) {
	if err := ValidateKey(key); err != nil {
		return Presigned{}, fmt.Errorf("presign put %s: %w", key, err)
	}
	if err := validateTTL(ttl); err != nil {
		return Presigned{}, fmt.Errorf("presign put %s: %w", key, err)
	}
	if maxSize <= 0 {
		return Presigned{}, fmt.Errorf("presign put %s: max size %d must be positive", key, maxSize)
	}
	ct := contentTypeOrDefault(contentType)
	exp := d.now().Add(ttl).Unix()
	u := d.sign(key, []param{
		{paramOp, opPut},
		{paramExpires, strconv.FormatInt(exp, 10)},
		{paramMax, strconv.FormatInt(maxSize, 10)},
		{paramType, ct},
	})
	return Presigned{
		URL:       u,
		Method:    http.MethodPut,
		Headers:   map[string]string{"Content-Type": ct},
		ExpiresAt: time.Unix(exp, 0).UTC(),
	}, nil
}

// PresignGet returns a signed GET URL that Handler serves until ttl has
// passed, as an attachment named fileName.
func (d *Disk) PresignGet(ctx context.Context, key, fileName string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", fmt.Errorf("presign get %s: %w", key, err)
	}
	if err := validateTTL(ttl); err != nil {
		return "", fmt.Errorf("presign get %s: %w", key, err)
	}
	exp := d.now().Add(ttl).Unix()
	return d.sign(key, []param{
		{paramOp, opGet},
		{paramExpires, strconv.FormatInt(exp, 10)},
		{paramFileName, fileName},
	}), nil
}

type param struct{ name, value string }

// sign builds the URL with the parameters in the documented order and a
// signature over the key and every parameter.
func (d *Disk) sign(key string, params []param) string {
	q := url.Values{}
	var raw strings.Builder
	for i, p := range params {
		q.Set(p.name, p.value)
		if i > 0 {
			raw.WriteByte('&')
		}
		raw.WriteString(p.name + "=" + url.QueryEscape(p.value))
	}
	raw.WriteString("&" + paramSig + "=" + hex.EncodeToString(d.mac(key, q)))
	return d.baseURL + "/blobs/" + key + "?" + raw.String()
}

// mac signs the key and the canonical (sorted, escaped) encoding of every
// query parameter but the signature, so that adding, removing or changing
// any parameter, or moving the signature to another key, invalidates it.
func (d *Disk) mac(key string, q url.Values) []byte {
	m := hmac.New(sha256.New, d.secret)
	m.Write([]byte("turbolane-blob-v1\n" + key + "\n" + q.Encode()))
	return m.Sum(nil)
}

// Reasons a presigned URL is refused; the handler turns them into 403s.
var (
	errBadSignature = errors.New("the link's signature is not valid")
	errExpired      = errors.New("the link has expired")
)

// verify checks the signature and expiry of a presigned URL for key and
// returns its parameters.
func (d *Disk) verify(key, rawQuery string) (url.Values, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errBadSignature
	}
	for _, vs := range q {
		if len(vs) != 1 {
			return nil, errBadSignature
		}
	}
	got, err := hex.DecodeString(q.Get(paramSig))
	if err != nil || len(got) != sha256.Size {
		return nil, errBadSignature
	}
	q.Del(paramSig)
	if !hmac.Equal(got, d.mac(key, q)) {
		return nil, errBadSignature
	}
	exp, err := strconv.ParseInt(q.Get(paramExpires), 10, 64)
	if err != nil {
		return nil, errBadSignature
	}
	if d.now().Unix() > exp {
		return nil, fmt.Errorf("%w at %s", errExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return q, nil
}
