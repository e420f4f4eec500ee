package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// The egress policy: a webhook URL is chosen by whoever creates the job, so
// the orchestrator must not become a way into its own network. Connections
// go only to globally reachable unicast addresses, unless the deployment's
// allow-list names the host, the address or a prefix holding it. The check
// runs in the dialer, on every address the host name resolves to, so a name
// that resolves (or rebinds) to a refused address is refused too.

// refusedV4 and refusedV6 are the refused ranges, with the reason the server's
// log gives.
type addrRange struct {
	prefix netip.Prefix
	why    string
}

var refusedV4 = []addrRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\")"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (or broadcast)"},
}

var refusedV6 = []addrRange{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (Teredo and others)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (private)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	globalUnicastV6 = netip.MustParsePrefix("2000::/3")
	nat64           = netip.MustParsePrefix("64:ff9b::/96") // the IPv4 address in the last 32 bits
	sixToFour       = netip.MustParsePrefix("2002::/16")    // the IPv4 address in bits 16-47
)

// classify says why the policy refuses ip, or "" when ip is a globally
// reachable unicast address. IPv4 addresses in IPv6 form (mapped, NAT64,
// 6to4) are judged by the IPv4 address they carry.
func classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid address"
	}
	ip = ip.WithZone("") // a zone would keep the prefixes below from matching
	if ip.Is4In6() {
		if why := classify(ip.Unmap()); why != "" {
			return "IPv4-mapped " + why
		}
		return ""
	}
	if ip.Is4() {
		for _, r := range refusedV4 {
			if r.prefix.Contains(ip) {
				return r.why
			}
		}
		return ""
	}
	for _, r := range refusedV6 {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		if why := classify(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
			return "NAT64 of " + why
		}
		return ""
	case sixToFour.Contains(ip):
		if why := classify(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
			return "6to4 of " + why
		}
		return ""
	case !globalUnicastV6.Contains(ip):
		return "reserved (outside 2000::/3)"
	}
	return ""
}

// allowList is the deployment's exemptions from the policy.
type allowList struct {
	hosts    map[string]bool // host names, lower case, without a trailing dot
	prefixes []netip.Prefix  // IPv4 prefixes in IPv4 form
}

func (a *allowList) allowsName(host string) bool {
	return len(a.hosts) > 0 && a.hosts[normalizeName(host)]
}

func (a *allowList) allowsAddr(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func normalizeName(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// ParseAllowedHosts reads a comma-separated allow-list (the form of
// WEBHOOK_ALLOWED_HOSTS): host names, IP addresses and CIDR prefixes, e.g.
// "127.0.0.1/32,receiver.internal". Blanks around entries and empty entries
// are ignored. It returns the entries in canonical form (names in lower
// case, addresses and prefixes as netip prints them), or an error naming
// the first bad entry.
func ParseAllowedHosts(s string) ([]string, error) {
	var out []string
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		c, err := canonicalEntry(entry)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// newAllowList parses allow-list entries (see ParseAllowedHosts).
func newAllowList(entries []string) (*allowList, error) {
	a := &allowList{hosts: map[string]bool{}}
	for _, entry := range entries {
		c, err := canonicalEntry(strings.TrimSpace(entry))
		if err != nil {
			return nil, err
		}
		if p, err := netip.ParsePrefix(c); err == nil {
			a.prefixes = append(a.prefixes, p)
		} else {
			a.hosts[c] = true
		}
	}
	return a, nil
}

// canonicalEntry checks one allow-list entry and returns it in canonical
// form: an IP address becomes a single-address prefix, a prefix loses its
// host bits (and an IPv4-mapped one becomes IPv4), a host name is lower
// case without a trailing dot.
func canonicalEntry(entry string) (string, error) {
	bad := func(why string) error { return fmt.Errorf("bad allow-list entry %q: %s", entry, why) }
	switch {
	case entry == "":
		return "", bad("empty")
	case strings.Contains(entry, "://"):
		return "", bad("want a host name, an IP address or a CIDR prefix, not a URL")
	case strings.Contains(entry, "%"):
		return "", bad("IPv6 zones are not supported")
	}
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return "", bad("not a CIDR prefix (like 10.1.0.0/16 or fd00::/8)")
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked().String(), nil
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]")
	if ip, err := netip.ParseAddr(addr); err == nil {
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()).String(), nil
	}
	if strings.Contains(entry, ":") {
		return "", bad("not an IP address (ports are not supported: list the host)")
	}
	name := normalizeName(entry)
	if err := checkHostName(name); err != "" {
		return "", bad(err)
	}
	return name, nil
}

// checkHostName says what is wrong with a lower-case host name, or "".
func checkHostName(name string) string {
	if name == "" || len(name) > 253 {
		return "not a host name"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "not a host name (empty or overlong label)"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "not a host name (use letters, digits, '-', '_' and '.'; punycode for other scripts; no wildcards)"
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "not a host name (a label starts or ends with '-')"
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return "neither an IP address nor a host name (numeric last label)"
	}
	return ""
}

// policyError is a connection the egress policy refused.
type policyError struct {
	host string
	ip   netip.Addr
	why  string
}

func (e *policyError) Error() string {
	if e.ip.IsValid() && e.host != e.ip.String() {
		return fmt.Sprintf("egress policy: %s resolves to %s, %s", e.host, e.ip, e.why)
	}
	if e.ip.IsValid() {
		return fmt.Sprintf("egress policy: %s is %s", e.ip, e.why)
	}
	return "egress policy: " + e.why
}

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var errNoAddress = errors.New("no address")

// dialer connects only where the policy allows.
type dialer struct {
	allow    *allowList
	resolver Resolver
	net      net.Dialer
}

// DialContext resolves addr's host, checks every address it resolves to
// and connects to the allowed addresses in turn. A host whose addresses
// include a refused one is refused as a whole: an attacker's name can not
// mix a public address with an internal one.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, perr := netip.ParseAddr(host); perr == nil {
		ips = []netip.Addr{ip}
	} else {
		lookup := "ip"
		switch network {
		case "tcp4":
			lookup = "ip4"
		case "tcp6":
			lookup = "ip6"
		}
		if ips, err = d.resolver.LookupNetIP(ctx, lookup, host); err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: errNoAddress.Error(), Name: host, IsNotFound: true}
		}
	}
	byName := d.allow.allowsName(host)
	for _, ip := range ips {
		if byName || d.allow.allowsAddr(ip) {
			continue
		}
		if why := classify(ip); why != "" {
			return nil, &policyError{host: host, ip: ip, why: why}
		}
	}
	var errs []error
	for _, ip := range ips {
		conn, err := d.net.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
