package filters

// MetricKind says how a sample is to be exposed.
type MetricKind uint8

const (
	Counter MetricKind = iota
	Gauge
)

// Sample is one value a stage exposes for monitoring. Stages import no
// metrics library; the root package turns samples into Prometheus metrics
// named edgeguard_<Name>. Label values must come from a bounded set (stage
// names, rule ids, eviction kinds), never from client data.
type Sample struct {
	Name   string
	Help   string
	Kind   MetricKind
	Labels []string // alternating name, value
	Value  float64
}

// MetricsSource is implemented by stages that expose samples. Collect is
// called on every scrape, from the scraping goroutine.
type MetricsSource interface {
	CollectMetrics(emit func(Sample))
}
