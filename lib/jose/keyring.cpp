// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/keyring.hpp"

#include "claudegate/base/fs.hpp"
#include "claudegate/base/json.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <array>
#include <cstdint>
#include <limits>
#include <set>
#include <system_error>

namespace claudegate::keyring {

namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view k_index_name = "index.json";
constexpr std::size_t k_max_index_bytes = 4 * 1024 * 1024;
constexpr stdfs::perms k_private_file = stdfs::perms::owner_read | stdfs::perms::owner_write;

// Whoever can change keys/ or a file in it can mint tokens: no links, no
// other owner, no group/other write (fs::check_private).
constexpr fs::TrustedPath k_keys_folder{"keys folder", fs::PathKind::directory, fs::Links::refuse};
constexpr fs::TrustedPath k_index_file{"keys index", fs::PathKind::file, fs::Links::refuse};
constexpr fs::TrustedPath k_key_file{"key file", fs::PathKind::file, fs::Links::refuse};

constexpr std::array<std::pair<KeyState, std::string_view>, 3> k_state_names{{
    {KeyState::active, "active"},
    {KeyState::published, "published"},
    {KeyState::retired, "retired"},
}};

std::optional<KeyState> key_state_from_name(std::string_view name) {
  for (const auto& [state, registered] : k_state_names) {
    if (registered == name) {
      return state;
    }
  }
  return std::nullopt;
}

// HS256 secrets have no PEM form, so they are stored as an oct JWK.
std::string key_file_name(std::string_view kid, keys::Alg alg) {
  return fmt::format("{}{}", kid, alg == keys::Alg::HS256 ? ".jwk" : ".pem");
}

// The kid names a file, so only base64url characters may pass.
bool safe_kid(std::string_view kid) {
  return !kid.empty() && kid.size() <= 128
         && kid.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
                == std::string_view::npos;
}

// Key material is wiped from memory once it has been written or parsed.
void wipe(std::string& secret) {
  OPENSSL_cleanse(secret.data(), secret.size());
}

// ---- index.json --------------------------------------------------------

json::Json optional_time(const std::optional<UnixSeconds>& t) {
  return t ? json::Json(*t) : json::Json(nullptr);
}

json::Json record_to_json(const KeyRecord& record) {
  return json::Json{{"kid", record.kid},
                    {"alg", std::string(alg_name(record.alg))},
                    {"state", std::string(key_state_name(record.state))},
                    {"bits", record.bits},
                    {"created_at", record.created_at},
                    {"published_at", optional_time(record.published_at)},
                    {"retire_at", optional_time(record.retire_at)},
                    {"file", record.file}};
}

Result<void> write_index(const stdfs::path& dir, const std::vector<KeyRecord>& records) {
  json::Json index = json::Json::array();
  for (const auto& record : records) {
    index.push_back(record_to_json(record));
  }
  return fs::write_atomic(dir / k_index_name, index.dump(2) + "\n", k_private_file);
}

// One entry of index.json being read, for messages that say which one is bad.
struct IndexEntry {
  const stdfs::path& index;
  std::size_t position;
  const json::Json& json;

  std::unexpected<Error> damaged(std::string_view problem) const {
    return fail(Errc::io, fmt::format("keys index {} is damaged (entry {}: {}); restore it from a backup",
                                      index.string(), position + 1, problem));
  }

  Result<std::string> text(std::string_view name) const {
    const auto found = json.find(name);
    if (found == json.end() || !found->is_string()) {
      return damaged(fmt::format("\"{}\" is missing or not a string", name));
    }
    return found->get<std::string>();
  }

  // An integer member; nullopt when absent or null and `required` is false.
  Result<std::optional<std::int64_t>> integer(std::string_view name, bool required) const {
    const auto found = json.find(name);
    if ((found == json.end() || found->is_null()) && required) {
      return damaged(fmt::format("\"{}\" is missing", name));
    }
    if (found == json.end() || found->is_null()) {
      return std::optional<std::int64_t>{};
    }
    const bool fits = found->is_number_integer()
                      && !(found->is_number_unsigned()
                           && found->get<std::uint64_t>()
                                  > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
    if (!fits) {
      return damaged(fmt::format("\"{}\" is not a whole number", name));
    }
    return found->get<std::int64_t>();
  }
};

Result<KeyRecord> names_of(const IndexEntry& entry) {
  auto kid = entry.text("kid");
  auto alg = kid ? entry.text("alg") : kid;
  auto state = alg ? entry.text("state") : alg;
  auto file = state ? entry.text("file") : state;
  if (!file) {
    return propagate(file);
  }
  KeyRecord record;
  const auto parsed_alg = keys::alg_from_name(*alg);
  const auto parsed_state = key_state_from_name(*state);
  if (!safe_kid(*kid) || !parsed_alg || !parsed_state) {
    return entry.damaged("bad kid, alg or state");
  }
  record.kid = std::move(*kid);
  record.alg = *parsed_alg;
  record.state = *parsed_state;
  // Never follow a path from the index: the file name is derived from the kid.
  if (*file != key_file_name(record.kid, record.alg)) {
    return entry.damaged(
        fmt::format("file \"{}\" should be \"{}\"", *file, key_file_name(record.kid, record.alg)));
  }
  record.file = std::move(*file);
  return record;
}

Result<KeyRecord> record_from_json(const IndexEntry& entry) {
  if (!entry.json.is_object()) {
    return entry.damaged("not an object");
  }
  auto record = names_of(entry);
  auto bits = record ? entry.integer("bits", true) : propagate(record);
  auto created = bits ? entry.integer("created_at", true) : bits;
  auto published = created ? entry.integer("published_at", false) : created;
  auto retire = published ? entry.integer("retire_at", false) : published;
  if (!retire) {
    return propagate(retire);
  }
  if (**bits < 0 || **bits > std::numeric_limits<int>::max()) {
    return entry.damaged("\"bits\" is out of range");
  }
  record->bits = static_cast<int>(**bits);
  record->created_at = **created;
  record->published_at = *published;
  record->retire_at = *retire;
  return record;
}

// The index as a whole: unique kids and at most one signer.
Result<void> check_index(const stdfs::path& index, const std::vector<KeyRecord>& records) {
  std::set<std::string_view> kids;
  std::size_t active = 0;
  for (const auto& record : records) {
    if (!kids.insert(record.kid).second) {
      return fail(Errc::io,
                  fmt::format("keys index {} is damaged (kid {} appears twice); restore it from a backup",
                              index.string(), record.kid));
    }
    active += record.state == KeyState::active ? 1 : 0;
  }
  if (active > 1) {
    return fail(Errc::io,
                fmt::format("keys index {} is damaged ({} active keys, expected one); restore it from a "
                            "backup",
                            index.string(), active));
  }
  return {};
}

Result<std::vector<KeyRecord>> parse_index(const stdfs::path& index, std::string_view text) {
  auto parsed = json::parse_value(text, json::Limits{k_max_index_bytes, 8});
  if (!parsed || !parsed->is_array()) {
    return fail(Errc::io,
                fmt::format("keys index {} is damaged ({}); restore it from a backup", index.string(),
                            parsed ? std::string("not a JSON array") : parsed.error().message));
  }
  std::vector<KeyRecord> records;
  for (std::size_t i = 0; i < parsed->size(); ++i) {
    auto record = record_from_json(IndexEntry{index, i, (*parsed)[i]});
    if (!record) {
      return propagate(record);
    }
    records.push_back(std::move(*record));
  }
  if (auto consistent = check_index(index, records); !consistent) {
    return propagate(consistent);
  }
  return records;
}

// The records of `dir`'s index; none when the folder or index does not exist yet.
Result<std::vector<KeyRecord>> read_index(const stdfs::path& dir) {
  const stdfs::path index = dir / k_index_name;
  std::error_code ec;
  // symlink_status: a dangling link is refused by read_trusted, not taken for "no index".
  if (stdfs::symlink_status(index, ec).type() == stdfs::file_type::not_found) {
    return std::vector<KeyRecord>{};
  }
  auto text = fs::read_trusted(index, k_index_file, k_max_index_bytes);
  if (!text) {
    return propagate(text);
  }
  return parse_index(index, *text);
}

// Published keys past retire_at stop verifying; true when any changed.
bool retire_expired(std::vector<KeyRecord>& records, UnixSeconds now) {
  bool changed = false;
  for (auto& record : records) {
    if (record.state == KeyState::published && record.retire_at && *record.retire_at <= now) {
      record.state = KeyState::retired;
      changed = true;
    }
  }
  return changed;
}

// ---- key files ---------------------------------------------------------

Result<keys::Key> parse_key_file(std::string_view text, keys::Alg alg) {
  if (alg != keys::Alg::HS256) {
    return keys::Key::from_pem(text, alg);
  }
  auto jwk = json::parse_object(text);
  if (!jwk) {
    return propagate(jwk);
  }
  return keys::Key::from_jwk(*jwk, alg);
}

Result<keys::Key> load_key(const stdfs::path& dir, const KeyRecord& record) {
  const stdfs::path path = dir / record.file;
  auto text = fs::read_private(path, k_key_file);
  if (!text) {
    return propagate(text);
  }
  auto key = parse_key_file(*text, record.alg);
  wipe(*text);
  if (!key) {
    return fail(Errc::io, fmt::format("key file {} does not load as {} ({}); restore it from a backup",
                                      path.string(), alg_name(record.alg), key.error().message));
  }
  if (key->kid() != record.kid) {
    return fail(Errc::io, fmt::format("key file {} does not match its index entry (kid {}, expected {}); "
                                      "restore it from a backup",
                                      path.string(), key->kid(), record.kid));
  }
  if (record.state == KeyState::active && !key->has_private()) {
    return fail(Errc::io, fmt::format("key file {} holds no private key, so it cannot sign; restore it from "
                                      "a backup",
                                      path.string()));
  }
  return key;
}

Result<keyset::KeySet> load_keys(const stdfs::path& dir, const std::vector<KeyRecord>& records) {
  keyset::KeySet keys;
  for (const auto& record : records) {
    // Retired keys are never used, so their files need not even exist.
    if (record.state == KeyState::retired) {
      continue;
    }
    auto key = load_key(dir, record);
    if (!key) {
      return propagate(key);
    }
    keys.add(std::move(*key));
  }
  return keys;
}

Result<std::string> key_file_content(const keys::Key& key) {
  if (!key.is_symmetric()) {
    return key.private_pem();
  }
  auto jwk = key.to_jwk(keys::IncludePrivate::yes);
  if (!jwk) {
    return propagate(jwk);
  }
  return jwk->dump();
}

Result<void> write_key_file(const stdfs::path& path, const keys::Key& key) {
  auto content = key_file_content(key);
  if (!content) {
    return propagate(content);
  }
  auto written = fs::write_atomic(path, *content, k_private_file);
  wipe(*content);
  return written;
}

// ---- adding ------------------------------------------------------------

const KeyRecord* active_record(const std::vector<KeyRecord>& records) {
  for (const auto& record : records) {
    if (record.state == KeyState::active) {
      return &record;
    }
  }
  return nullptr;
}

Result<void> check_addable(const std::vector<KeyRecord>& records, const keys::Key& key, Rotation rotation,
                           std::int64_t retire_after) {
  if (!key.has_private()) {
    return fail(
        Errc::config,
        fmt::format("key {} has no private part, so it cannot sign; import the private key", key.kid()));
  }
  for (const auto& record : records) {
    if (record.kid == key.kid()) {
      return fail(Errc::config, fmt::format("key {} is already in the keyring ({}); nothing to add",
                                            key.kid(), key_state_name(record.state)));
    }
  }
  if (retire_after < 0) {
    return fail(Errc::config,
                fmt::format("retire delay {}s is negative; pass a positive duration", retire_after));
  }
  const KeyRecord* active = active_record(records);
  if (active != nullptr && rotation == Rotation::no) {
    return fail(Errc::config,
                fmt::format("the keyring already has an active signing key ({}); run: claudegate keygen "
                            "--rotate to replace it",
                            active->kid));
  }
  return {};
}

// `records` with `key` as the new active key and the old active one published.
Result<std::vector<KeyRecord>> with_new_key(std::vector<KeyRecord> records, const keys::Key& key,
                                            UnixSeconds now, std::int64_t retire_after) {
  UnixSeconds retire_at = 0;
  if (__builtin_add_overflow(now, retire_after, &retire_at)) {
    return fail(Errc::config,
                fmt::format("retire delay {}s is too large; pass a shorter duration", retire_after));
  }
  for (auto& record : records) {
    if (record.state == KeyState::active) {
      record.state = KeyState::published;
      record.published_at = now;
      record.retire_at = retire_at;
    }
  }
  records.push_back(KeyRecord{key.kid(), key.alg(), KeyState::active, key.bits(), now, std::nullopt,
                              std::nullopt, key_file_name(key.kid(), key.alg())});
  return records;
}

} // namespace

std::string_view key_state_name(KeyState state) {
  for (const auto& [value, name] : k_state_names) {
    if (value == state) {
      return name;
    }
  }
  return "unknown";
}

Result<Keyring> Keyring::open(const std::filesystem::path& dir, UnixSeconds now) {
  Keyring ring;
  ring.m_dir = dir;
  if (auto safe = fs::check_private(dir, k_keys_folder); !safe) {
    return propagate(safe);
  }
  auto records = read_index(dir);
  if (!records) {
    return propagate(records);
  }
  ring.m_records = std::move(*records);
  // Persist retirement so `keygen --list` and the JWKS agree from now on.
  if (retire_expired(ring.m_records, now)) {
    if (auto saved = write_index(dir, ring.m_records); !saved) {
      return propagate(saved);
    }
  }
  auto keys = load_keys(dir, ring.m_records);
  if (!keys) {
    return propagate(keys);
  }
  ring.m_keys = std::move(*keys);
  return ring;
}

Result<const keys::Key*> Keyring::signer() const {
  if (const KeyRecord* active = active_record(m_records)) {
    if (const keys::Key* key = m_keys.find(active->kid)) {
      return key;
    }
  }
  return fail(Errc::config, "no signing key yet; run: claudegate keygen");
}

std::vector<const keys::Key*> Keyring::public_keys() const {
  std::vector<const keys::Key*> out;
  for (const auto& record : m_records) {
    const keys::Key* key = record.state == KeyState::retired ? nullptr : m_keys.find(record.kid);
    // Symmetric secrets verify but are never published.
    if (key != nullptr && !key->is_symmetric()) {
      out.push_back(key);
    }
  }
  return out;
}

Result<KeyRecord> Keyring::add(const keys::Key& key, Rotation rotation, UnixSeconds now,
                               std::int64_t retire_after) {
  if (auto allowed = check_addable(m_records, key, rotation, retire_after); !allowed) {
    return propagate(allowed);
  }
  auto records = with_new_key(m_records, key, now, retire_after);
  if (!records) {
    return propagate(records);
  }
  const stdfs::path key_path = m_dir / records->back().file;
  if (auto made = fs::create_private_dir(m_dir); !made) {
    return propagate(made);
  }
  if (auto safe = fs::check_private(m_dir, k_keys_folder); !safe) {
    return propagate(safe);
  }
  // Key file first: a crash leaves an unused file, never an index entry without its key.
  if (auto written = write_key_file(key_path, key); !written) {
    return propagate(written);
  }
  if (auto saved = write_index(m_dir, *records); !saved) {
    std::error_code ignored;
    stdfs::remove(key_path, ignored);
    return propagate(saved);
  }
  m_records = std::move(*records);
  m_keys.add(key);
  return m_records.back();
}

} // namespace claudegate::keyring
