-- Face boxes lie inside their photo: boxes stored before detection clipped them reached past
-- the edge (negative, or beyond width/height) for faces cut by the frame.
UPDATE faces f
SET bbox = ARRAY[least(greatest(f.bbox[1], 0), p.width), least(greatest(f.bbox[2], 0), p.height),
                 least(greatest(f.bbox[3], 0), p.width), least(greatest(f.bbox[4], 0), p.height)
                ]::real[]
FROM photos p
WHERE p.id = f.photo_id
  AND (least(f.bbox[1], f.bbox[2], f.bbox[3], f.bbox[4]) < 0
       OR greatest(f.bbox[1], f.bbox[3]) > p.width OR greatest(f.bbox[2], f.bbox[4]) > p.height);
