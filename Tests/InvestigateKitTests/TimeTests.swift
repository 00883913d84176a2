import Testing
@testable import InvestigateKit

@Suite struct TimeTests {
    @Test func civilRoundTrip() {
        for days: Int64 in [-1000, -1, 0, 1, 365, 10_000, 20_125, 50_000] {
            let (y, m, d) = CivilTime.civilFromDays(days)
            #expect(CivilTime.daysFromCivil(year: y, month: m, day: d) == days)
        }
        #expect(CivilTime.daysFromCivil(year: 2025, month: 2, day: 6) == 20_125)
    }

    @Test func zonesParse() {
        #expect(ZoneSpec("+0900") == .fixed(seconds: 32_400))
        #expect(ZoneSpec("+09:00") == .fixed(seconds: 32_400))
        #expect(ZoneSpec("UTC") == .utc)
        #expect(ZoneSpec("-5") == .fixed(seconds: -18_000))
        #expect(ZoneSpec("Asia/Tokyo") == .named("Asia/Tokyo"))
        #expect(ZoneSpec("Not/AZone") == nil)
    }

    @Test func userTimesAreReadInTheirZone() throws {
        let jst = ZoneSpec("Asia/Tokyo")!
        let t = try #require(UserTime.parse("2025-02-06 14:32", zone: jst))
        #expect(TimeFormat.isoUTC(t) == "2025-02-06T05:32:00Z")
        #expect(TimeFormat.display(t, zone: jst) == "2025-02-06 14:32:00.000 +0900")
        let z = try #require(UserTime.parse("2025-02-06T05:32:45.5Z", zone: jst))
        #expect(TimeFormat.isoUTC(z) == "2025-02-06T05:32:45.500Z")
        #expect(UserTime.parse("2025-02-30 10:00", zone: .utc) == nil)
        #expect(UserTime.duration("5m") == 300_000_000)
        #expect(UserTime.duration("1m30s") == 90_000_000)
        #expect(UserTime.duration("soon") == nil)
    }

    @Test func namedZonesFollowDaylightSaving() throws {
        let ny = try #require(ZoneSpec("America/New_York"))
        let summer = try #require(UserTime.parse("2025-07-01 12:00", zone: ny))
        let winter = try #require(UserTime.parse("2025-01-01 12:00", zone: ny))
        #expect(TimeFormat.isoUTC(summer) == "2025-07-01T16:00:00Z")
        #expect(TimeFormat.isoUTC(winter) == "2025-01-01T17:00:00Z")
    }
}
