// SPDX-License-Identifier: Apache-2.0
// Test-only LD_PRELOAD shim: makes one OpenSSL function fail on demand, so the
// hardening tests can check that claudegate fails closed when libcrypto does.
//
//   CLAUDEGATE_OPENSSL_FAIL=EVP_DigestVerify   the function to break
//   CLAUDEGATE_OPENSSL_FAIL_AFTER=N            let the first N calls through (default 0)
//   CLAUDEGATE_OPENSSL_FAIL_LOG=FILE           append the name for every injected failure,
//                                              so a test can prove the fault was hit
//
// Every other call goes to the real function (dlsym(RTLD_NEXT)). A failing
// function returns what OpenSSL returns on error: 0 for int results, NULL for
// pointers.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long g_calls;

static void note_failure(const char* name) {
  const char* path = getenv("CLAUDEGATE_OPENSSL_FAIL_LOG");
  FILE* log = path != NULL ? fopen(path, "a") : NULL;
  if (log != NULL) {
    fprintf(log, "%s\n", name);
    fclose(log);
  }
}

// Whether this call of `name` must fail.
static int should_fail(const char* name) {
  const char* target = getenv("CLAUDEGATE_OPENSSL_FAIL");
  if (target == NULL || strcmp(target, name) != 0) {
    return 0;
  }
  const char* after = getenv("CLAUDEGATE_OPENSSL_FAIL_AFTER");
  const long allowed = after != NULL ? strtol(after, NULL, 10) : 0;
  if (atomic_fetch_add(&g_calls, 1) < allowed) {
    return 0;
  }
  note_failure(name);
  return 1;
}

static void* next_symbol(const char* name) {
  void* real = dlsym(RTLD_NEXT, name);
  if (real == NULL) {
    fprintf(stderr, "openssl_fail: no real %s\n", name);
    abort();
  }
  return real;
}

// Defines `ret name params` failing with `failed`, else calling the real one with `args`.
#define SHIM(ret, name, failed, params, args)                                                                \
  ret name params {                                                                                          \
    if (should_fail(#name)) {                                                                                \
      return failed;                                                                                         \
    }                                                                                                        \
    ret(*real) params = (ret(*) params)next_symbol(#name);                                                   \
    return real args;                                                                                        \
  }

SHIM(int, EVP_DigestVerify, 0,
     (EVP_MD_CTX * ctx, const unsigned char* sig, size_t siglen, const unsigned char* tbs, size_t tbslen),
     (ctx, sig, siglen, tbs, tbslen))
SHIM(int, EVP_DigestSign, 0,
     (EVP_MD_CTX * ctx, unsigned char* sig, size_t* siglen, const unsigned char* tbs, size_t tbslen),
     (ctx, sig, siglen, tbs, tbslen))
SHIM(int, EVP_DigestVerifyInit_ex, 0,
     (EVP_MD_CTX * ctx, EVP_PKEY_CTX** pctx, const char* mdname, OSSL_LIB_CTX* libctx, const char* props,
      EVP_PKEY* pkey, const OSSL_PARAM params[]),
     (ctx, pctx, mdname, libctx, props, pkey, params))
SHIM(int, EVP_DigestSignInit_ex, 0,
     (EVP_MD_CTX * ctx, EVP_PKEY_CTX** pctx, const char* mdname, OSSL_LIB_CTX* libctx, const char* props,
      EVP_PKEY* pkey, const OSSL_PARAM params[]),
     (ctx, pctx, mdname, libctx, props, pkey, params))
SHIM(int, EVP_MD_CTX_copy_ex, 0, (EVP_MD_CTX * out, const EVP_MD_CTX* in), (out, in))
SHIM(EVP_MAC_CTX*, EVP_MAC_CTX_dup, NULL, (const EVP_MAC_CTX* src), (src))
SHIM(int, EVP_MAC_init, 0,
     (EVP_MAC_CTX * ctx, const unsigned char* key, size_t keylen, const OSSL_PARAM params[]),
     (ctx, key, keylen, params))
SHIM(int, EVP_MAC_final, 0, (EVP_MAC_CTX * ctx, unsigned char* out, size_t* outl, size_t outsize),
     (ctx, out, outl, outsize))
SHIM(int, RAND_bytes, 0, (unsigned char* buf, int num), (buf, num))
SHIM(int, EVP_Digest, 0,
     (const void* data, size_t count, unsigned char* md, unsigned int* size, const EVP_MD* type,
      ENGINE* impl),
     (data, count, md, size, type, impl))
SHIM(int, EVP_PKEY_generate, 0, (EVP_PKEY_CTX * ctx, EVP_PKEY** ppkey), (ctx, ppkey))
SHIM(int, PEM_write_bio_PrivateKey, 0,
     (BIO * out, const EVP_PKEY* x, const EVP_CIPHER* enc, const unsigned char* kstr, int klen,
      pem_password_cb* cb, void* u),
     (out, x, enc, kstr, klen, cb, u))
SHIM(int, OSSL_DECODER_from_data, 0, (OSSL_DECODER_CTX * ctx, const unsigned char** pdata, size_t* pdata_len),
     (ctx, pdata, pdata_len))
