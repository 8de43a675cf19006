// Internal helpers of the dataset readers: a line-by-line CSV reader that
// remembers where it is (so every error names FILE:LINE), strict number
// parsing, and the "key=value,..." options string of read_dataset.
#pragma once
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace adcorre::data::detail {

// Reads a CSV file one record per line (quoted fields with commas and ""
// escapes are supported; a field spanning lines is not: FER and AffectNet
// files never have one). CRLF endings and blank lines are tolerated.
class CsvReader {
 public:
  // Throws adcorre::Error when the file cannot be opened.
  explicit CsvReader(const std::string& path, char separator = ',');
  // Reads the next non-blank record into `fields`; false at the end of file.
  // Throws adcorre::Error("FILE:LINE: ...") for an unterminated quote.
  bool next(std::vector<std::string>& fields);
  // The raw text of the last record (without the line ending).
  const std::string& raw() const { return line_; }
  int line() const { return line_no_; }   // 1-based line of the last record
  const std::string& path() const { return path_; }
  // "FILE:LINE: message", for errors about the last record.
  std::string where(const std::string& message) const;

 private:
  std::string path_;
  std::ifstream in_;
  std::string line_;
  int line_no_ = 0;
  char sep_;
};

// Splits one CSV line; false when a quote is not closed.
bool split_csv_line(const std::string& line, char sep, std::vector<std::string>& fields);

// Strict integer parsing of a whole field (surrounding spaces allowed);
// false for an empty field, trailing junk or overflow.
bool parse_int(const std::string& s, long long& out);
bool parse_double(const std::string& s, double& out);

// Index of the column named `name` (case-insensitive, spaces trimmed), or -1.
int column_index(const std::vector<std::string>& header, const std::string& name);

// Parses read_dataset's options: "key=value" items separated by commas or
// semicolons (not spaces: values may be paths). Keys in `known` are
// returned; keys in `other` (options of other dataset kinds, as when train and
// val sets of different kinds share one options string) are ignored; any
// other key is an error listing `known`, so a typo never passes silently.
std::map<std::string, std::string> parse_options(const std::string& options, const std::vector<std::string>& known,
                                                 const std::vector<std::string>& other, const std::string& kind);

// "train" / "val" / "test" (or "" = all) from a split name and its usual
// synonyms (training, valid, validation, publictest, privatetest, ...).
// Throws adcorre::Error for another name.
std::string canonical_split(const std::string& split);

std::string trim(const std::string& s);

}  // namespace adcorre::data::detail
