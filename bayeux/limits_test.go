package bayeux

// testLimits are the default limits, for tests of the parser.
var testLimits = newLimits(&Config{MaxNesting: 64, MaxBatch: 100, MaxChannelLength: 1024, MaxChannelSegments: 64})
