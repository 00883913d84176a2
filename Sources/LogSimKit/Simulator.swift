import Foundation

/// Runs a simulation: merges the traffic sources in arrival order, plays each request through the
/// modelled stack and streams every layer's log plus truth.jsonl into `directory`.
public enum Simulator {
    @discardableResult
    public static func run(_ config: SimulationConfig, into directory: URL,
                           progress: ((Int) -> Void)? = nil) throws -> SimulationSummary {
        let tree = try OutputTree(root: directory)
        let out = try Emitter(tree: tree)
        let end = config.start + config.duration
        var sources: [TrafficSource] = []
        let play: (ClientRequest) throws -> Void
        var api: ApiModel?

        switch config.stack {
        case .edge:
            let model = EdgeModel(config: config, out: out)
            model.scheduleOutage()
            sources.append(BrowsingUsers(seed: config.seed, start: config.start, rate: config.rate * 0.93))
            sources.append(HealthChecks(seed: config.seed, start: config.start, nodes: EdgeTopology.albNodes.count))
            sources.append(Scanners(seed: config.seed, start: config.start, end: end))
            if config.failures.contains(.flood) {
                sources.append(Flood(seed: config.seed, at: config.start + config.duration * 5 / 10))
            }
            sources.append(Scheduled(seed: config.seed, index: 4, requests: EdgeModel.scheduledRequests(config)))
            play = model.play
        case .api:
            let model = ApiModel(config: config, out: out)
            api = model
            sources.append(ApiClients(seed: config.seed, start: config.start, rate: config.rate))
            if config.failures.contains(.throttling) {
                sources.append(Burst(seed: config.seed, at: config.start + config.duration * 4 / 10))
            }
            var scheduled = ApiModel.scheduledRequests(config)
            if config.failures.contains(.missingAuthToken), config.incident == nil {
                var c = config
                c.incident = .apiBotScan(at: config.start + config.duration / 2, clientIP: "20.83.41.117", count: 150)
                scheduled = ApiModel.scheduledRequests(c)
            }
            sources.append(Scheduled(seed: config.seed, index: 4, requests: scheduled))
            play = model.play
        }

        // Merge the sources by arrival time (ties: the source listed first).
        var heads = Heap<(request: ClientRequest, source: Int)> { a, b in
            a.request.arrival != b.request.arrival ? a.request.arrival < b.request.arrival : a.source < b.source
        }
        for (i, source) in sources.enumerated() {
            if let r = source.next() { heads.push((r, i)) }
        }
        var played = 0
        var first = Int64.max, last = Int64.min
        while played < config.requests, let head = heads.pop() {
            let r = head.request
            // Every line queued so far that is written before this arrival can go to disk: nothing
            // that arrives later is written earlier.
            try out.advance(to: r.arrival - 1)
            try play(r)
            played += 1
            first = min(first, r.arrival)
            last = max(last, r.arrival)
            if let next = sources[head.source].next() { heads.push((next, head.source)) }
            if played % 100_000 == 0 { progress?(played) }
        }
        try out.finish()
        try api?.writeMetrics(into: directory)
        return SimulationSummary(requests: played, lines: out.linesWritten, files: tree.files.map(\.relativePath).sorted(),
                                 peakBufferedLines: out.peakQueued, first: first, last: last)
    }
}
