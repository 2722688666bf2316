"""The Responses API: wire models, the HTTP client (JSON, SSE, retries) and its errors."""
