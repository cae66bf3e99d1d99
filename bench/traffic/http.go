package traffic

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
)

var (
	userAgents = [...]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"okhttp/4.12.0",
		"python-requests/2.32.3",
		"curl/8.11.0",
	}
	apiResources = [...]string{"items", "orders", "users", "carts", "products", "sessions", "events"}
	pages        = [...]struct{ path, ctype string }{
		{"/", "text/html; charset=utf-8"},
		{"/index.html", "text/html; charset=utf-8"},
		{"/products/list", "text/html; charset=utf-8"},
		{"/static/js/app.3f9a1c.js", "application/javascript"},
		{"/static/css/site.8b2e4d.css", "text/css"},
		{"/images/hero.jpg", "image/jpeg"},
		{"/images/logo.png", "image/png"},
		{"/fonts/inter.woff2", "font/woff2"},
	}
	hostNames = [...]string{"www.example.com", "shop.example.com", "api.example.net", "app.example.org"}
)

// httpFlow adds a keep-alive HTTP/1.1 connection to s: a geometric number
// of request/response exchanges, then the client closes.
func (b *builder) httpFlow(s *gen.TCPSession) {
	host := hostNames[b.r.intn(len(hostNames))]
	ua := userAgents[b.r.intn(len(userAgents))]
	n := b.r.geometric(meanRequests, maxRequests)
	for k := 0; k < n; k++ {
		class := b.pickClass()
		b.stats.HTTP.Requests[classNames[class]]++
		req, resp := b.httpExchange(class, host, ua)
		s.Send(dataplane.ToServer, req)
		s.Send(dataplane.ToClient, resp)
	}
	s.Close(dataplane.ToServer)
}

func (b *builder) httpExchange(class int, host, ua string) (req, resp []byte) {
	r := b.r
	size := b.objectSize(class)
	common := "Host: " + host + "\r\nUser-Agent: " + ua +
		"\r\nAccept-Language: en-US,en;q=0.9\r\nConnection: keep-alive\r\n"
	if r.chance(0.6) {
		common += "Cookie: sid=" + hexString(r, 32) + "; theme=light\r\n"
	}
	switch class {
	case classAPI:
		res := apiResources[r.intn(len(apiResources))]
		id := itoa(r.intn(1_000_000))
		auth := "Authorization: Bearer " + hexString(r, 40) + "\r\n"
		status := "200 OK"
		if r.chance(0.4) { // a write: POST or PUT with a JSON body
			method, target := "POST", "/api/v1/"+res
			if r.chance(0.3) {
				method, target = "PUT", target+"/"+id
			} else {
				status = "201 Created"
			}
			body := b.jsonBody(r.logUniform(apiMin, apiMax))
			req = append([]byte(method+" "+target+" HTTP/1.1\r\n"+common+auth+
				"Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"), body...)
		} else {
			target := "/api/v1/" + res + "/" + id
			if r.chance(0.5) {
				target += "?fields=id,name,price&page=" + itoa(r.between(1, 20))
			}
			if r.chance(0.03) {
				status = "404 Not Found"
			}
			req = []byte("GET " + target + " HTTP/1.1\r\n" + common + auth + "Accept: application/json\r\n\r\n")
		}
		body := b.jsonBody(size)
		resp = b.httpResponse(status, "application/json", body, false)
	case classPage:
		pg := pages[r.intn(len(pages))]
		req = []byte("GET " + pg.path + " HTTP/1.1\r\n" + common +
			"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Encoding: identity\r\n\r\n")
		src := b.noise
		if pg.ctype[:4] == "text" || pg.ctype == "application/javascript" {
			src = b.text
		}
		body := b.appendFill(make([]byte, 0, size), src, size)
		resp = b.httpResponse("200 OK", pg.ctype, body, pg.ctype[:4] == "text" && r.chance(0.3))
	default:
		req = []byte("GET /downloads/release-" + itoa(r.between(1, 99)) + ".tar.xz HTTP/1.1\r\n" + common +
			"Accept: */*\r\n\r\n")
		body := b.appendFill(make([]byte, 0, size), b.noise, size)
		resp = b.httpResponse("200 OK", "application/x-xz", body, false)
	}
	return req, resp
}

// httpResponse frames body with Content-Length or, when chunked, in chunks
// of 4–16 KiB as a streaming server writes them.
func (b *builder) httpResponse(status, ctype string, body []byte, chunked bool) []byte {
	head := "HTTP/1.1 " + status + "\r\nDate: Wed, 01 Jan 2025 00:00:00 GMT\r\nServer: nginx\r\nContent-Type: " + ctype +
		"\r\nCache-Control: max-age=60\r\nConnection: keep-alive\r\n"
	if !chunked {
		out := make([]byte, 0, len(head)+40+len(body))
		out = append(out, head+"Content-Length: "+itoa(len(body))+"\r\n\r\n"...)
		return append(out, body...)
	}
	out := make([]byte, 0, len(head)+len(body)+len(body)/1024+64)
	out = append(out, head+"Transfer-Encoding: chunked\r\n\r\n"...)
	for len(body) > 0 {
		c := min(len(body), b.r.between(4<<10, 16<<10))
		out = append(out, hexLen(c)+"\r\n"...)
		out = append(out, body[:c]...)
		out = append(out, "\r\n"...)
		body = body[c:]
	}
	return append(out, "0\r\n\r\n"...)
}

// jsonBody returns a JSON object of exactly n bytes (at least ~60).
func (b *builder) jsonBody(n int) []byte {
	head := `{"id":` + itoa(b.r.intn(1_000_000)) + `,"name":"item-` + itoa(b.r.intn(10_000)) +
		`","price":` + itoa(b.r.intn(100_000)) + `,"tags":["new","sale"],"note":"`
	out := make([]byte, 0, max(n, len(head)+2))
	out = append(out, head...)
	out = b.appendFill(out, b.text, max(0, n-len(head)-2))
	return append(out, `"}`...)
}

func hexLen(n int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var buf [16]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = digits[n&15]
		n >>= 4
	}
	return string(buf[i:])
}

func hexString(r *rng, n int) string {
	const digits = "0123456789abcdef"
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = digits[r.intn(16)]
	}
	return string(buf)
}
