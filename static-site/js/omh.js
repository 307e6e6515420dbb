// Open mHealth data points inside FHIR Observations: decoding valueAttachment.data, the time of
// a point, its numeric values (blood pressure has two) and a one-line text of its value.
export const OMH_SYSTEM = "https://w3id.org/openmhealth";

const decoder = new TextDecoder();

/** The Open mHealth data point (`{header, body}`) of an OMH Observation, or null. */
export function decodePoint(resource) {
  const data = resource.valueAttachment?.data;
  if (!data) return null;
  try {
    const binary = atob(data);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return JSON.parse(decoder.decode(bytes));
  } catch {
    return null;
  }
}

/** The effective time of an Observation in milliseconds, or NaN. */
export const timeOf = (resource) => Date.parse(resource.effectiveDateTime ?? resource.effectivePeriod?.start ?? "");

const label = (key) => {
  const text = key.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
};

/** The numeric measurements of a data point body: `[{key, label, unit, value}]`. */
export function numericValues(body) {
  const values = [];
  for (const [key, v] of Object.entries(body || {})) {
    if (key === "effective_time_frame") continue;
    if (typeof v === "number") values.push({ key, label: label(key), unit: "", value: v });
    else if (v && typeof v === "object" && typeof v.value === "number") {
      values.push({ key, label: label(key), unit: v.unit ?? "", value: v.value });
    }
  }
  // Blood pressure reads systolic first.
  return values.sort((a, b) => Number(b.key.startsWith("systolic")) - Number(a.key.startsWith("systolic")));
}

/** A short text of the value of a data point body ("110 mg/dL", "122/78 mmHg"). */
export function valueText(body) {
  const values = numericValues(body);
  const sys = values.find((v) => v.key === "systolic_blood_pressure");
  const dia = values.find((v) => v.key === "diastolic_blood_pressure");
  if (sys && dia) return `${sys.value}/${dia.value} ${sys.unit}`;
  if (values.length) return values.map((v) => `${v.value} ${v.unit}`.trim()).join(", ");
  const { effective_time_frame: _, ...rest } = body || {};
  const text = JSON.stringify(rest);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}
