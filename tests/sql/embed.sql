-- recommender.embed(text) -> vector(384), L2-normalised MiniLM sentence embeddings.
SELECT vector_dims(recommender.embed('A man is eating food.')) AS dims,
       round(vector_norm(recommender.embed('A man is eating food.'))::numeric, 4) AS norm;
-- The published check of all-MiniLM-L6-v2: 0.7553.
SELECT round((1 - (recommender.embed('A man is eating food.') <=> recommender.embed('A man is eating a piece of bread.')))::numeric, 3) AS cosine;
-- Related texts are closer than unrelated ones.
SELECT round((1 - (recommender.embed('espresso coffee beans') <=> recommender.embed('dark roast coffee')))::numeric, 2) > 0.5 AS coffee_close,
       round((1 - (recommender.embed('espresso coffee beans') <=> recommender.embed('noise-cancelling headphones')))::numeric, 2) < 0.3 AS headphones_far;
-- NULL in, NULL out (STRICT); an empty string is a valid text.
SELECT recommender.embed(NULL::text) IS NULL AS null_gives_null,
       round(vector_norm(recommender.embed(''))::numeric, 4) AS empty_norm;
-- Long text is truncated (256 tokens), never an error: 1 MB here.
SELECT round(vector_norm(recommender.embed(repeat('very long description ', 50000)))::numeric, 4) AS norm_1mb;
-- Emoji, right-to-left and combining characters are just text.
SELECT vector_dims(recommender.embed('café ☕ 👩‍💻 مرحبا e' || chr(769))) AS dims;
-- Batch form: one model call for many texts, input order kept, NULL elements stay NULL.
SELECT i, v IS NULL AS is_null, round((1 - (v <=> recommender.embed(t)))::numeric, 4) AS same_as_single
  FROM unnest(recommender.embed(ARRAY['red shoes', NULL, 'blue shirt'])) WITH ORDINALITY AS e(v, i)
  JOIN unnest(ARRAY['red shoes', NULL, 'blue shirt']) WITH ORDINALITY AS x(t, j) ON i = j
 ORDER BY i;
SELECT cardinality(recommender.embed('{}'::text[])) AS empty_batch;
-- The template a product is embedded from.
SELECT recommender.product_text('Dark roast coffee', E'Whole beans,\n 1 kg', 'Coffee', 14.5);
SELECT recommender.product_text('Mug', NULL, NULL, NULL);
-- What this backend loaded.
SELECT role, loaded, name, source, checksum_verified, texts_embedded > 0 AS has_embedded
  FROM recommender.model_info();
