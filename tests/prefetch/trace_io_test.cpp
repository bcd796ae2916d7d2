// Trace formats: every format round-trips, and each kind of bad input gets
// the error code and the record or line number it deserves.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "prefetch/trace_io.h"

namespace tiercache {
namespace {

Trace Sample() {
  Trace t;
  t.id_limit = 100;
  t.records = {{10, 1, 4096, TraceOp::kRead, 1},
               {20, 2, 8192, TraceOp::kWrite, 1},
               {30, 1, 4096, TraceOp::kRead, 2},
               {40, 2, 0, TraceOp::kFree, 2},
               {50, 99, 1, TraceOp::kRead, 0}};
  return t;
}

Trace ReadsOnly(const Trace& t) {
  Trace out;
  for (const TraceRecord& r : t.records) {
    if (r.op == TraceOp::kRead) out.records.push_back({r.time_ns, r.id, r.bytes, TraceOp::kRead, 0});
  }
  return out;
}

TEST(TraceIo, OurFormatsRoundTripEverything) {
  const Trace t = Sample();
  for (TraceFormat f : {TraceFormat::kTiercache, TraceFormat::kTiercacheCsv}) {
    auto bytes = SerializeTrace(t, f);
    ASSERT_TRUE(bytes.ok());
    auto back = ParseTrace(*bytes, f);
    ASSERT_TRUE(back.ok()) << TraceFormatName(f) << ": " << back.status().ToString();
    EXPECT_EQ(back->records, t.records);
    EXPECT_EQ(back->id_limit, 100u);
    EXPECT_EQ(DetectTraceFormat(*bytes).value(), f);
  }
}

TEST(TraceIo, ResearchFormatsKeepTheReads) {
  const Trace t = Sample();
  for (TraceFormat f : {TraceFormat::kOracleGeneral, TraceFormat::kCsv}) {
    auto bytes = SerializeTrace(t, f);
    ASSERT_TRUE(bytes.ok());
    auto back = ParseTrace(*bytes, f);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->records, ReadsOnly(t).records);
  }
  EXPECT_EQ(DetectTraceFormat(SerializeTrace(t, TraceFormat::kCsv).value()).value(), TraceFormat::kCsv);
  EXPECT_EQ(DetectTraceFormat(SerializeTrace(t, TraceFormat::kOracleGeneral).value()).value(),
            TraceFormat::kOracleGeneral);
}

TEST(TraceIo, OracleGeneralLayoutIsLibCacheSims) {
  // Two reads of id 7 then one of id 9: 24-byte little-endian records, the
  // first pointing at the second (vtime 1), the others at -1.
  Trace t;
  t.records = {{1, 7, 100, TraceOp::kRead, 0}, {2, 7, 100, TraceOp::kRead, 0}, {3, 9, 5, TraceOp::kRead, 0}};
  std::string bytes = SerializeTrace(t, TraceFormat::kOracleGeneral).value();
  ASSERT_EQ(bytes.size(), 72u);
  auto u = [&](size_t at) { return static_cast<unsigned char>(bytes[at]); };
  EXPECT_EQ(u(0), 1);    // timestamp
  EXPECT_EQ(u(4), 7);    // obj_id
  EXPECT_EQ(u(12), 100); // obj_size
  EXPECT_EQ(u(16), 1);   // next_access_vtime = 1
  for (size_t i = 17; i < 24; ++i) EXPECT_EQ(u(i), 0);
  for (size_t i = 40; i < 48; ++i) EXPECT_EQ(u(i), 0xff);  // -1
}

TEST(TraceIo, TruncatedBinaryNamesTheRecord) {
  std::string bytes = SerializeTrace(Sample(), TraceFormat::kTiercache).value();
  bytes.resize(kTraceHeaderBytes + 2 * kTraceRecordBytes + 5);
  auto r = ParseTrace(bytes, TraceFormat::kTiercache);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kCorruption);
  EXPECT_NE(r.status().message().find("record 2 of 5"), std::string::npos) << r.status().message();

  std::string og = SerializeTrace(Sample(), TraceFormat::kOracleGeneral).value();
  og.resize(og.size() - 3);
  r = ParseTrace(og, TraceFormat::kOracleGeneral);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kCorruption);
  EXPECT_NE(r.status().message().find("record 2"), std::string::npos) << r.status().message();
}

TEST(TraceIo, GarbageAndAlteredBinaryAreCorruption) {
  EXPECT_EQ(ParseTrace(std::string(64, 'x'), TraceFormat::kTiercache).status().code(), ErrorCode::kCorruption);
  std::string bytes = SerializeTrace(Sample(), TraceFormat::kTiercache).value();
  bytes[kTraceHeaderBytes + 3] ^= 0x10;  // a timestamp bit
  auto r = ParseTrace(bytes, TraceFormat::kTiercache);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kCorruption);
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos);
}

TEST(TraceIo, IdsOutOfRangeAreRejectedWithTheRecordNumber) {
  Trace t = Sample();
  t.records[3].id = 100;  // id_limit is 100
  t.records[3].op = TraceOp::kRead;
  t.records[3].bytes = 1;
  for (TraceFormat f : {TraceFormat::kTiercache, TraceFormat::kTiercacheCsv}) {
    auto r = ParseTrace(SerializeTrace(t, f).value(), f);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("out of range"), std::string::npos) << r.status().message();
  }
  EXPECT_NE(ParseTrace(SerializeTrace(t, TraceFormat::kTiercache).value(), TraceFormat::kTiercache)
                .status().message().find("record 3"), std::string::npos);
  // tiercache-csv: line 1 banner, line 2 column names, record 3 on line 6.
  EXPECT_NE(ParseTrace(SerializeTrace(t, TraceFormat::kTiercacheCsv).value(), TraceFormat::kTiercacheCsv)
                .status().message().find("line 6"), std::string::npos);
}

TEST(TraceIo, CsvErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* needle;
  } cases[] = {
      {"timestamp,obj_id,obj_size\n1,2,3\n4,5\n", "line 3: expected 3"},
      {"1,2,3\n4,x,6\n", "line 2: id 'x'"},
      {"1,2,3\n4,5,0\n", "line 2: size 0"},
      {"1,2,3\n4,18446744073709551616,6\n", "line 2: id"},
      {"1,2,3\n4,18446744073709551615,6\n", "reserved"},
      {"1,2,-3\n", "line 1: size"},
  };
  for (const Case& c : cases) {
    auto r = ParseTrace(c.text, TraceFormat::kCsv);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
  }
  auto ok = ParseTrace("timestamp,obj_id,obj_size\r\n1,2,3\r\n\r\n 4 , 5 , 6 \n", TraceFormat::kCsv);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->records.size(), 2u);
  EXPECT_EQ(ok->records[1].id, 5u);
  EXPECT_EQ(ok->records[1].bytes, 6u);
}

TEST(TraceIo, UnknownFormatsAreClearErrors) {
  auto f = ParseTraceFormat("parquet");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("parquet"), std::string::npos);
  EXPECT_EQ(ParseTraceFormat("oracleGeneral").value(), TraceFormat::kOracleGeneral);
  EXPECT_FALSE(DetectTraceFormat("").ok());
  EXPECT_FALSE(DetectTraceFormat(std::string("\x01\x02\x03\x04\x05", 5)).ok());
  std::string newer = SerializeTrace(Sample(), TraceFormat::kTiercache).value();
  newer[8] = 2;  // version 2; the header checksum no longer matches either
  EXPECT_FALSE(ParseTrace(newer, TraceFormat::kTiercache).ok());
}

TEST(TraceIo, FilesRoundTripAndMissingFilesAreNotFound) {
  const std::string path = ::testing::TempDir() + "/trace_io_test.tctrace";
  ASSERT_TRUE(WriteTraceFile(path, Sample(), TraceFormat::kTiercache).ok());
  auto back = ReadTraceFile(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->records, Sample().records);
  std::remove(path.c_str());
  auto missing = ReadTraceFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace tiercache
