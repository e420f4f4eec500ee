package blob

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// S3PathStyle chooses how the bucket appears in request URLs.
type S3PathStyle string

// Path styles (S3_FORCE_PATH_STYLE).
const (
	// S3PathAuto uses virtual-host style where the endpoint supports it
	// (AWS), path style otherwise (MinIO, IP addresses, localhost).
	S3PathAuto S3PathStyle = ""
	// S3PathForce always uses path style: https://host/bucket/key.
	S3PathForce S3PathStyle = "path"
	// S3PathVirtual always uses virtual-host style: https://bucket.host/key.
	S3PathVirtual S3PathStyle = "virtual"
)

// ParseS3PathStyle reads an S3_FORCE_PATH_STYLE value, case-insensitively:
// true (1, yes, on, path) forces path style, "virtual" virtual-host style,
// false (0, no, off), "auto" or empty lets the client choose. ok is false
// for anything else.
func ParseS3PathStyle(v string) (style S3PathStyle, ok bool) {
	switch strings.ToLower(v) {
	case "", "auto", "0", "false", "no", "off":
		return S3PathAuto, true
	case "1", "true", "yes", "on", "path":
		return S3PathForce, true
	case "virtual":
		return S3PathVirtual, true
	}
	return S3PathAuto, false
}

// S3Options configure an S3 store (package blob/s3). They mirror the S3_*
// variables of the upstream SDK. They live here, apart from the S3 client,
// so that a configuration can carry them without linking it.
type S3Options struct {
	// Endpoint is the server URL (S3_ENDPOINT_URL), such as
	// http://127.0.0.1:9000 or https://s3.eu-west-1.amazonaws.com; http
	// means plain HTTP. A bare host:port means https.
	Endpoint  string
	AccessKey string // S3_ACCESS_KEY
	SecretKey string // S3_SECRET_KEY (never logged)
	// Bucket is the bucket of the store (S3_DEFAULT_BUCKET, DefaultBucket).
	Bucket string
	// Region is the bucket's region (S3_REGION, us-east-1). Presigning
	// needs no request to the server when it is set.
	Region    string
	PathStyle S3PathStyle // S3_FORCE_PATH_STYLE
	// MaxRetries bounds the attempts of each request on network errors (3).
	MaxRetries int
	// PartSize is the part size of multipart uploads of unknown length
	// (16 MiB). Known lengths use minio-go's choice.
	PartSize uint64
	// Transport carries the requests (http.DefaultTransport's settings).
	Transport http.RoundTripper
}

// String describes the options without the secret key.
func (o S3Options) String() string {
	return fmt.Sprintf("blob.S3Options{Endpoint: %q, AccessKey: %q, Bucket: %q, Region: %q, PathStyle: %q}",
		o.Endpoint, o.AccessKey, o.Bucket, o.Region, o.PathStyle)
}

// GoString is String, so that %#v does not print the secret key either.
func (o S3Options) GoString() string { return o.String() }

// Configured reports whether an endpoint is set: S3 is on.
func (o S3Options) Configured() bool { return o.Endpoint != "" }

// Check reports what is missing or malformed.
func (o S3Options) Check() error {
	var errs []error
	if o.Endpoint == "" {
		errs = append(errs, errors.New("no endpoint (S3_ENDPOINT_URL)"))
	} else if _, _, err := o.EndpointHost(); err != nil {
		errs = append(errs, err)
	}
	if o.AccessKey == "" || o.SecretKey == "" {
		errs = append(errs, errors.New("S3_ACCESS_KEY and S3_SECRET_KEY are required with S3_ENDPOINT_URL"))
	}
	if o.Bucket != "" {
		if err := ValidBucket(o.Bucket); err != nil {
			errs = append(errs, err)
		}
	}
	switch o.PathStyle {
	case S3PathAuto, S3PathForce, S3PathVirtual:
	default:
		errs = append(errs, fmt.Errorf("path style %q: want path, virtual or empty (auto)", o.PathStyle))
	}
	return errors.Join(errs...)
}

// EndpointHost splits the endpoint into the host[:port] to connect to and
// whether to use TLS: http:// means plain HTTP, https:// or no scheme TLS.
func (o S3Options) EndpointHost() (host string, secure bool, err error) {
	raw := o.Endpoint
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("endpoint %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
	case "https":
		secure = true
	default:
		return "", false, fmt.Errorf("endpoint %q: scheme must be http or https", raw)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", false, fmt.Errorf("endpoint %q: want scheme://host[:port] with no path", raw)
	}
	return u.Host, secure, nil
}
