package protocol

// PublicBlobsPrefix is where the orchestrator serves the presigned URLs of
// its local-folder blob storage (S3 URLs point at the S3 server instead).
const PublicBlobsPrefix = "/_public/blobs"

// UploadURL answers GET /api/{version}/jobs/{id}/files/upload: a presigned
// URL that accepts one plain HTTP PUT of the file's bytes until it expires.
type UploadURL struct {
	URL       string `json:"url"`
	Method    string `json:"method"` // "PUT"
	ExpiresIn int    `json:"expires_in"`
	// S3URI is the file's reference, s3://<bucket>/jobs/<job_id>/<filename>,
	// for task params.
	S3URI string `json:"s3_uri"`
}

// FileUploaded answers PUT /api/{version}/jobs/{id}/files/content/{filename}.
type FileUploaded struct {
	Status string `json:"status"` // "uploaded"
	S3URI  string `json:"s3_uri"`
	Size   int64  `json:"size"`
	ETag   string `json:"etag,omitempty"`
}
